-- For ./scripts/bench-record-issuances only (SCHEMA_CHANGE=scripts/bench/schema-changes/without-fks.sql): the six foreign keys a first issue's rows are checked against, dropped.
-- Measurement, never for a real database (issue 22, docs/benchmarks.md).
ALTER TABLE certificates DROP CONSTRAINT certificates_ca_id_fkey, DROP CONSTRAINT certificates_created_by_fkey,
  DROP CONSTRAINT certificates_owner_id_fkey, DROP CONSTRAINT certificates_private_key_id_fkey;
ALTER TABLE certificate_serials DROP CONSTRAINT certificate_serials_ca_id_fkey;
ALTER TABLE private_keys DROP CONSTRAINT private_keys_owner_id_fkey;
