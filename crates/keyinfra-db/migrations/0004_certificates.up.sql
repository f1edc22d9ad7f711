-- 0004 certificates, partitioned by expiry, and the per-CA serial-number registry.
--
-- Status values (the design's "certificate status ENUM"):
--   ACTIVE      issued and in use; the only status that expiry alerts consider.
--   SUPERSEDED  a renewal replaced it. Still cryptographically valid until not_after unless
--               it is also revoked, but no longer the current version, so it gets no alerts.
--   REVOKED     revoked (details in revoked_certificates); on the CRL until it expires.
--   EXPIRED     not_after has passed; set by the maintenance job. Revoked certificates stay
--               REVOKED after expiry so that history keeps the stronger fact.
-- Transitions are one-way: ACTIVE -> SUPERSEDED | REVOKED | EXPIRED, SUPERSEDED -> REVOKED |
-- EXPIRED. REVOKED and EXPIRED are final. A trigger enforces this.
--
-- Partitioning: BY RANGE (not_after), the certificate's expiration date, one partition per
-- calendar month in UTC (certificates_pYYYY_MM) plus certificates_default for rows outside
-- the created range. ensure_certificate_partitions() creates months ahead and moves any
-- rows the default partition holds for a new month into it; drop_expired_certificate_partitions()
-- implements the design's 2-year retention.
--
-- Serial numbers: PostgreSQL cannot enforce a unique index on a partitioned table unless it
-- contains the partition key, and (ca_id, serial_number, not_after) would let the same serial
-- appear twice with different expiry dates. So every certificate also has a row in the
-- non-partitioned certificate_serials registry, written by a trigger in the same statement,
-- whose UNIQUE (ca_id, serial_number) the database enforces across all partitions. The
-- registry is also the target of foreign keys to "a certificate" (revocations, renewals),
-- which PostgreSQL cannot point at a partitioned table's id alone. Serial numbers are stored
-- canonically: uppercase hex of the positive integer's big-endian bytes, no leading zero
-- byte, at most 20 octets (RFC 5280 4.1.2.2). The application draws them from a CSPRNG with
-- at least 64 bits of entropy and retries on the (astronomically rare) collision.

CREATE TYPE certificate_status AS ENUM ('ACTIVE', 'SUPERSEDED', 'REVOKED', 'EXPIRED');

CREATE FUNCTION keyinfra_serial_is_canonical(serial text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN serial ~ '^([0-9A-F]{2}){1,20}$' AND serial !~ '^00';

-- SANs are stored as typed strings: 'DNS:router1.example.net', 'IP:192.0.2.1', 'IP:2001:db8::1',
-- 'EMAIL:noc@example.net', 'URI:https://...'. The application validates each value; the
-- database guards the shape.
CREATE FUNCTION keyinfra_san_list_is_valid(sans text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN cardinality(sans) <= 1024
        AND coalesce((SELECT bool_and(s IS NOT NULL AND s ~ '^(DNS|IP|EMAIL|URI):[^[:cntrl:]]+$')
                      FROM unnest(sans) AS s), true);

CREATE TABLE certificate_serials (
    certificate_id uuid        PRIMARY KEY,
    -- RESTRICT: a CA with certificates cannot be deleted.
    ca_id          uuid        NOT NULL REFERENCES certificate_authorities (id) ON DELETE RESTRICT,
    serial_number  text        NOT NULL,
    not_after      timestamptz NOT NULL,

    CONSTRAINT certificate_serials_ca_serial_key UNIQUE (ca_id, serial_number),
    CONSTRAINT certificate_serials_serial_canonical CHECK (keyinfra_serial_is_canonical(serial_number))
);
COMMENT ON TABLE certificate_serials IS
    'One row per certificate, written by trigger: enforces per-CA serial uniqueness across all partitions of certificates.';
-- Serves: lookup by serial when the CA is not given (inventory search, operators pasting a serial).
CREATE INDEX certificate_serials_serial_idx ON certificate_serials (serial_number);
-- Serves: retention, which deletes the registry rows of a dropped month.
CREATE INDEX certificate_serials_not_after_idx ON certificate_serials (not_after);

-- Only the trigger below (SECURITY DEFINER) writes the registry; the application reads it.
GRANT SELECT ON certificate_serials TO keyinfra_app;

CREATE TABLE certificates (
    id                 uuid               NOT NULL DEFAULT gen_random_uuid(),
    -- RESTRICT: certificates outlive nothing; their CA is never deleted under them.
    ca_id              uuid               NOT NULL REFERENCES certificate_authorities (id) ON DELETE RESTRICT,
    -- SET NULL: deleting a user keeps their (revoked) certificates for the CRL; only admins see them.
    owner_id           uuid               REFERENCES users (id) ON DELETE SET NULL,
    serial_number      text               NOT NULL,
    subject_dn         text               NOT NULL,
    subject_alt_names  text[]             NOT NULL DEFAULT '{}',
    not_before         timestamptz        NOT NULL,
    not_after          timestamptz        NOT NULL,
    status             certificate_status NOT NULL DEFAULT 'ACTIVE',
    version            integer            NOT NULL DEFAULT 1,
    -- SET NULL: when the previous version ages out under retention, the newer one stays.
    renewed_from       uuid               REFERENCES certificate_serials (certificate_id) ON DELETE SET NULL,
    renewed_at         timestamptz,
    -- SET NULL: the renewing admin may be deleted later; the audit log keeps who it was.
    renewed_by         uuid               REFERENCES users (id) ON DELETE SET NULL,
    certificate_der    bytea              NOT NULL,
    fingerprint_sha256 bytea              NOT NULL,
    key_algorithm      key_algorithm      NOT NULL,
    -- RESTRICT: a key is never deleted while a certificate refers to it. NULL for CSR-signed.
    private_key_id     uuid               REFERENCES private_keys (id) ON DELETE RESTRICT,
    profile            text               NOT NULL,
    created_at         timestamptz        NOT NULL DEFAULT now(),
    -- SET NULL: as renewed_by.
    created_by         uuid               REFERENCES users (id) ON DELETE SET NULL,

    CONSTRAINT certificates_pkey PRIMARY KEY (id, not_after),
    CONSTRAINT certificates_validity CHECK (not_before < not_after),
    CONSTRAINT certificates_version_positive CHECK (version >= 1),
    CONSTRAINT certificates_subject_nonempty CHECK (btrim(subject_dn) <> ''),
    CONSTRAINT certificates_serial_canonical CHECK (keyinfra_serial_is_canonical(serial_number)),
    CONSTRAINT certificates_sans_valid CHECK (keyinfra_san_list_is_valid(subject_alt_names)),
    CONSTRAINT certificates_der_nonempty CHECK (octet_length(certificate_der) > 0),
    CONSTRAINT certificates_fingerprint_matches CHECK (fingerprint_sha256 = digest(certificate_der, 'sha256')),
    CONSTRAINT certificates_profile_valid CHECK (profile ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    -- A first version has no renewal data; a renewal records when it happened. renewed_from
    -- and renewed_by may later become NULL through their ON DELETE SET NULL.
    CONSTRAINT certificates_renewal_consistent CHECK (
        (version = 1 AND renewed_from IS NULL AND renewed_at IS NULL AND renewed_by IS NULL)
        OR (version > 1 AND renewed_at IS NOT NULL)
    ),
    CONSTRAINT certificates_not_renewed_from_self CHECK (renewed_from <> id)
) PARTITION BY RANGE (not_after);

COMMENT ON COLUMN certificates.not_after IS 'The expiration date; the partition key.';
COMMENT ON COLUMN certificates.subject_dn IS 'Subject distinguished name as an RFC 4514 string.';

-- Serves: a user's certificates ordered by expiry (the inventory's default view, ORDER BY
-- not_after, id, so no sort step), a user's expiring certificates, and the ON DELETE SET NULL
-- of owner_id.
CREATE INDEX certificates_owner_not_after_idx ON certificates (owner_id, not_after, id);
-- Serves: active certificates expiring soon (certificates_expiring(), expiry alerts, the
-- dashboard): only the partitions the window touches are read, in order, so a first page
-- stops after LIMIT rows.
CREATE INDEX certificates_active_not_after_idx ON certificates (not_after, id) WHERE status = 'ACTIVE';
-- Serves: the version chain of a renewal ("renewed from X"), and ON DELETE SET NULL.
CREATE INDEX certificates_renewed_from_idx ON certificates (renewed_from) WHERE renewed_from IS NOT NULL;
-- Serves: the certificates that use a key (renewal without re-keying, key export) and the
-- RESTRICT check when a key is deleted.
CREATE INDEX certificates_private_key_idx ON certificates (private_key_id) WHERE private_key_id IS NOT NULL;
-- Serves: ON DELETE SET NULL of created_by and renewed_by when a user is deleted, which would
-- otherwise scan every partition.
CREATE INDEX certificates_created_by_idx ON certificates (created_by);
CREATE INDEX certificates_renewed_by_idx ON certificates (renewed_by) WHERE renewed_by IS NOT NULL;
-- Lookup by serial goes through certificate_serials (indexed there) and then the primary key
-- (id, not_after), which prunes to a single partition.

CREATE TABLE certificates_default PARTITION OF certificates DEFAULT;

-- Registers every new certificate's serial in the non-partitioned registry. SECURITY
-- DEFINER because the application role may not write the registry itself. A duplicate
-- serial fails the INSERT with unique_violation on certificate_serials_ca_serial_key.
CREATE FUNCTION certificates_register_serial() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    INSERT INTO certificate_serials (certificate_id, ca_id, serial_number, not_after)
    VALUES (NEW.id, NEW.ca_id, NEW.serial_number, NEW.not_after);
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION certificates_register_serial() FROM PUBLIC;

CREATE TRIGGER certificates_register_serial BEFORE INSERT ON certificates
    FOR EACH ROW EXECUTE FUNCTION certificates_register_serial();

-- An issued certificate is immutable: only its status (one-way, see above), its owner (an
-- admin's reassignment) and the references that ON DELETE SET NULL clears may change.
CREATE FUNCTION certificates_guard_update() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF (NEW.id, NEW.ca_id, NEW.serial_number, NEW.subject_dn, NEW.subject_alt_names,
        NEW.not_before, NEW.not_after, NEW.version, NEW.renewed_at, NEW.certificate_der,
        NEW.fingerprint_sha256, NEW.key_algorithm, NEW.private_key_id, NEW.profile, NEW.created_at)
       IS DISTINCT FROM
       (OLD.id, OLD.ca_id, OLD.serial_number, OLD.subject_dn, OLD.subject_alt_names,
        OLD.not_before, OLD.not_after, OLD.version, OLD.renewed_at, OLD.certificate_der,
        OLD.fingerprint_sha256, OLD.key_algorithm, OLD.private_key_id, OLD.profile, OLD.created_at)
    THEN
        RAISE EXCEPTION 'an issued certificate cannot be changed (id %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'certificates_immutable';
    END IF;
    IF (NEW.renewed_from IS DISTINCT FROM OLD.renewed_from AND NEW.renewed_from IS NOT NULL)
       OR (NEW.renewed_by IS DISTINCT FROM OLD.renewed_by AND NEW.renewed_by IS NOT NULL)
       OR (NEW.created_by IS DISTINCT FROM OLD.created_by AND NEW.created_by IS NOT NULL)
    THEN
        RAISE EXCEPTION 'renewal and creation references of a certificate cannot be changed (id %)', OLD.id
            USING ERRCODE = 'integrity_constraint_violation', CONSTRAINT = 'certificates_immutable';
    END IF;
    IF NEW.status IS DISTINCT FROM OLD.status AND NOT (
        (OLD.status = 'ACTIVE' AND NEW.status IN ('SUPERSEDED', 'REVOKED', 'EXPIRED'))
        OR (OLD.status = 'SUPERSEDED' AND NEW.status IN ('REVOKED', 'EXPIRED'))
    ) THEN
        RAISE EXCEPTION 'a certificate cannot go from % to %', OLD.status, NEW.status
            USING ERRCODE = 'check_violation', CONSTRAINT = 'certificates_status_transition';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER certificates_guard_update BEFORE UPDATE ON certificates
    FOR EACH ROW EXECUTE FUNCTION certificates_guard_update();

ALTER TABLE certificates ENABLE ROW LEVEL SECURITY;
CREATE POLICY certificates_owner_or_admin ON certificates TO keyinfra_app
    USING (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()))
    WITH CHECK (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));

-- No DELETE: certificates leave only through retention (drop_expired_certificate_partitions).
GRANT SELECT, INSERT, UPDATE ON certificates TO keyinfra_app;

-- Active certificates whose expiry lies in (as_of, as_of + within]. SECURITY INVOKER and
-- inlinable, so row-level security applies (a USER gets their own) and the planner prunes
-- to the partitions the window touches.
CREATE FUNCTION certificates_expiring(within interval DEFAULT '7 days', as_of timestamptz DEFAULT now())
    RETURNS SETOF certificates
    LANGUAGE sql STABLE
AS $$
    SELECT *
    FROM certificates
    WHERE status = 'ACTIVE'
      AND not_after > as_of
      AND not_after <= as_of + within
    ORDER BY not_after, id
$$;

-- The certificate with this canonical serial (optionally of one CA), found through the
-- registry and then the primary key, so only one partition is read.
CREATE FUNCTION certificate_by_serial(serial text, ca uuid DEFAULT NULL)
    RETURNS SETOF certificates
    LANGUAGE sql STABLE
AS $$
    SELECT c.*
    FROM certificate_serials AS s
    JOIN certificates AS c ON c.id = s.certificate_id AND c.not_after = s.not_after
    WHERE s.serial_number = serial
      AND (ca IS NULL OR s.ca_id = ca)
$$;

-- Creates the monthly partitions (UTC) from as_of's month through months_ahead months
-- later, and returns the ones it created. Rows the default partition already holds for a
-- new month are moved into it. Idempotent; concurrent callers (several replicas) are
-- serialised by an advisory lock.
CREATE FUNCTION ensure_certificate_partitions(months_ahead integer DEFAULT 24, as_of timestamptz DEFAULT now())
    RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, rows_moved bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    first_month timestamp := date_trunc('month', as_of AT TIME ZONE 'UTC');
    month_start timestamp;
    moved bigint;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 240 THEN
        RAISE EXCEPTION 'months_ahead must be between 0 and 240, not %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('keyinfra.certificate_partitions'));

    FOR i IN 0..months_ahead LOOP
        month_start := first_month + make_interval(months => i);
        partition_name := 'certificates_p' || to_char(month_start, 'YYYY_MM');
        range_start := month_start AT TIME ZONE 'UTC';
        range_end := (month_start + interval '1 month') AT TIME ZONE 'UTC';
        CONTINUE WHEN to_regclass(partition_name) IS NOT NULL;

        IF EXISTS (SELECT 1 FROM certificates_default
                   WHERE not_after >= range_start AND not_after < range_end) THEN
            -- A partition cannot be created over rows the default partition holds: build it
            -- beside the table, move the rows (no trigger fires: the registry already has
            -- them), then attach it, which adds the parent's indexes, constraints and triggers.
            EXECUTE format('CREATE TABLE %I (LIKE certificates INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           partition_name);
            EXECUTE format('WITH gone AS (DELETE FROM certificates_default
                                           WHERE not_after >= $1 AND not_after < $2 RETURNING *)
                            INSERT INTO %I SELECT * FROM gone', partition_name)
                USING range_start, range_end;
            GET DIAGNOSTICS moved = ROW_COUNT;
            EXECUTE format('ALTER TABLE certificates ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           partition_name, range_start, range_end);
        ELSE
            moved := 0;
            EXECUTE format('CREATE TABLE %I PARTITION OF certificates FOR VALUES FROM (%L) TO (%L)',
                           partition_name, range_start, range_end);
        END IF;
        rows_moved := moved;
        RETURN NEXT;
    END LOOP;
END
$$;

-- Drops the monthly partitions whose whole range ended more than `retention` before as_of
-- (the design's 2-year retention), with their serial registry rows (and, through the
-- foreign key, their revocation rows). Returns what it dropped. The default partition is
-- never dropped.
CREATE FUNCTION drop_expired_certificate_partitions(retention interval DEFAULT '2 years', as_of timestamptz DEFAULT now())
    RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, certificates_dropped bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    cutoff timestamptz := as_of - retention;
    part record;
BEGIN
    IF retention IS NULL OR retention < interval '0' THEN
        RAISE EXCEPTION 'retention must be a non-negative interval, not %', retention
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('keyinfra.certificate_partitions'));

    FOR part IN
        SELECT p.relname::text AS name, b.bounds[1]::timestamptz AS lo, b.bounds[2]::timestamptz AS hi
        FROM pg_inherits AS i
        JOIN pg_class AS p ON p.oid = i.inhrelid
        CROSS JOIN LATERAL regexp_match(pg_get_expr(p.relpartbound, p.oid),
                                        'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') AS b(bounds)
        WHERE i.inhparent = 'certificates'::regclass
          -- The default partition has no bounds (regexp_match gives NULL): never dropped.
          AND b.bounds IS NOT NULL
        ORDER BY 2
    LOOP
        CONTINUE WHEN part.hi >= cutoff;
        partition_name := part.name;
        range_start := part.lo;
        range_end := part.hi;
        EXECUTE format('SELECT count(*) FROM %I', part.name) INTO certificates_dropped;
        EXECUTE format('DROP TABLE %I', part.name);
        DELETE FROM certificate_serials WHERE not_after >= part.lo AND not_after < part.hi;
        RETURN NEXT;
    END LOOP;
END
$$;

REVOKE ALL ON FUNCTION ensure_certificate_partitions(integer, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION drop_expired_certificate_partitions(interval, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION ensure_certificate_partitions(integer, timestamptz) TO keyinfra_app;
GRANT EXECUTE ON FUNCTION drop_expired_certificate_partitions(interval, timestamptz) TO keyinfra_app;

-- The current month and the next 24 exist from the start; the maintenance job keeps the
-- horizon moving.
SELECT ensure_certificate_partitions(24);
