-- Time-ordered identifiers for the rows that come with every certificate, and one index
-- fewer in the serial registry. Both keep each new certificate's index entries off random
-- pages: at millions of rows those pages are not in memory, and after every checkpoint the
-- first change to each of them writes the whole 8 kB page to WAL. docs/benchmarks.md has
-- the figures (WAL and full-page images per certificate, throughput with 500,000 loaded).
--
-- 1. Version 7 UUIDs (RFC 9562) begin with the Unix time in milliseconds, so new keys land
--    at the right-hand edge of each index, the page every insert is already using.
--    - The application makes the ids of certificates and private keys itself
--      (Uuid::now_v7), because it signs a certificate before writing it.
--    - keyinfra_uuid_v7() below names the rows the database makes: audit events,
--      revocations, expiry alerts, and any certificate or key inserted without an id.
--    - An id now tells when its row was made, to the millisecond. Each of these rows records
--      that time anyway (created_at, occurred_at, revoked_at), and who may read a row is
--      decided by row-level security, not by an unguessable id; 74 random bits remain, so
--      ids still never collide in practice.
--
-- 2. The registry's per-CA uniqueness, certificate_serials_ca_serial_key, is the same
--    constraint on (serial_number, ca_id) instead of (ca_id, serial_number). Serials are
--    random, so one of the two indexes over them was a random page per certificate; with
--    serial_number first, the constraint's index also serves a lookup by serial alone
--    (certificate_by_serial without a CA), and certificate_serials_serial_idx goes. Nothing
--    looks a CA's serials up by ca_id alone: CRLs come from revoked_certificates.
--    The constraint keeps its name, which the application maps to a serial collision.
--    Rebuilding it holds an exclusive lock on the registry while its index is built (a few
--    seconds per million certificates); run the upgrade in a quiet minute.

-- 48 bits of Unix time in milliseconds, then the version (7), then gen_random_uuid()'s random
-- bits and variant. set_bit numbers bits from the least significant of each byte: 52 and 53
-- turn byte 6's high nibble from version 4 (0100) into 7 (0111). A single expression, so
-- the planner inlines it into the column defaults that call it (a test asserts this).
CREATE FUNCTION keyinfra_uuid_v7() RETURNS uuid
    LANGUAGE sql VOLATILE PARALLEL SAFE
    RETURN encode(
        set_bit(set_bit(
            overlay(uuid_send(gen_random_uuid())
                    PLACING substring(int8send(floor(extract(epoch FROM clock_timestamp()) * 1000)::bigint) FROM 3)
                    FROM 1 FOR 6),
            52, 1), 53, 1),
        'hex')::uuid;
REVOKE ALL ON FUNCTION keyinfra_uuid_v7() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_uuid_v7() TO keyinfra_app;

ALTER TABLE private_keys ALTER COLUMN id SET DEFAULT keyinfra_uuid_v7();
ALTER TABLE certificates ALTER COLUMN id SET DEFAULT keyinfra_uuid_v7();
ALTER TABLE revoked_certificates ALTER COLUMN id SET DEFAULT keyinfra_uuid_v7();
ALTER TABLE audit_events ALTER COLUMN id SET DEFAULT keyinfra_uuid_v7();
ALTER TABLE expiry_alerts ALTER COLUMN id SET DEFAULT keyinfra_uuid_v7();

ALTER TABLE certificate_serials DROP CONSTRAINT certificate_serials_ca_serial_key;
ALTER TABLE certificate_serials
    ADD CONSTRAINT certificate_serials_ca_serial_key UNIQUE (serial_number, ca_id);
DROP INDEX certificate_serials_serial_idx;
