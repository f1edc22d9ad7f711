CREATE INDEX certificate_serials_serial_idx ON certificate_serials (serial_number);
ALTER TABLE certificate_serials DROP CONSTRAINT certificate_serials_ca_serial_key;
ALTER TABLE certificate_serials
    ADD CONSTRAINT certificate_serials_ca_serial_key UNIQUE (ca_id, serial_number);

ALTER TABLE expiry_alerts ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE audit_events ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE revoked_certificates ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE certificates ALTER COLUMN id SET DEFAULT gen_random_uuid();
ALTER TABLE private_keys ALTER COLUMN id SET DEFAULT gen_random_uuid();

DROP FUNCTION keyinfra_uuid_v7();
