-- CFSSL certdb tables for PostgreSQL, as the 2016 CFSSL 1.2 snapshot packaged by Debian
-- (golang-cfssl) expects them. Debian ships no migration files, so the columns are the ones
-- certdb/sql/database_accessor.go reads and writes in that package (the `db:` tags of
-- certdb.CertificateRecord and certdb.OCSPRecord); the types follow upstream's
-- certdb/pg/migrations/001_CreateCertificates.sql. Later CFSSL releases added columns
-- (issued_at, not_before, metadata, sans, common_name) that this version never writes.
CREATE TABLE certificates (
  serial_number            bytea NOT NULL,
  authority_key_identifier bytea NOT NULL,
  ca_label                 bytea,
  status                   bytea NOT NULL,
  reason                   int,
  expiry                   timestamptz,
  revoked_at               timestamptz,
  pem                      bytea NOT NULL,
  PRIMARY KEY (serial_number, authority_key_identifier)
);

CREATE TABLE ocsp_responses (
  serial_number            bytea NOT NULL,
  authority_key_identifier bytea NOT NULL,
  body                     bytea NOT NULL,
  expiry                   timestamptz,
  PRIMARY KEY (serial_number, authority_key_identifier),
  FOREIGN KEY (serial_number, authority_key_identifier)
    REFERENCES certificates (serial_number, authority_key_identifier)
);
