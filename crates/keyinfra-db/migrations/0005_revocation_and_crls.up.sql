-- 0005 revocations and CRLs.
--
-- * Reasons are RFC 5280's CRLReason names. KeyInfra never puts a certificate on hold:
--   revocation is permanent, so certificateHold (6) and removeFromCRL (8, delta CRLs only)
--   are deliberately absent, and 7 is unassigned by the RFC.
-- * revoked_certificates copies serial_number, ca_id, not_after and owner_id from the
--   certificate so that building a CRL reads one small table through one index, and
--   row-level security needs no join. owner_id follows the certificate's owner (trigger in
--   this migration).
-- * CRL storage format (a design question): DER in BYTEA. DER is what clients fetch and
--   what is signed; PEM is derived on the way out.

CREATE TYPE revocation_reason AS ENUM (
    'unspecified',          -- 0
    'keyCompromise',        -- 1
    'cACompromise',         -- 2
    'affiliationChanged',   -- 3
    'superseded',           -- 4
    'cessationOfOperation', -- 5
    'privilegeWithdrawn',   -- 9
    'aACompromise'          -- 10
);

CREATE TABLE revoked_certificates (
    id              uuid              PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: the revocation row leaves with its certificate, when retention drops it
    -- (two years after expiry, long after it left the CRL).
    certificate_id  uuid              NOT NULL REFERENCES certificate_serials (certificate_id) ON DELETE CASCADE,
    -- RESTRICT: as for certificates.
    ca_id           uuid              NOT NULL REFERENCES certificate_authorities (id) ON DELETE RESTRICT,
    serial_number   text              NOT NULL,
    not_after       timestamptz       NOT NULL,
    -- SET NULL: as certificates.owner_id; the row must stay for the CRL.
    owner_id        uuid              REFERENCES users (id) ON DELETE SET NULL,
    revoked_at      timestamptz       NOT NULL,
    reason          revocation_reason NOT NULL DEFAULT 'unspecified',
    invalidity_date timestamptz,
    -- SET NULL: the audit log keeps who it was.
    revoked_by      uuid              REFERENCES users (id) ON DELETE SET NULL,

    -- A certificate is revoked at most once.
    CONSTRAINT revoked_certificates_certificate_key UNIQUE (certificate_id),
    CONSTRAINT revoked_certificates_serial_canonical CHECK (keyinfra_serial_is_canonical(serial_number)),
    CONSTRAINT revoked_certificates_invalidity_not_after_revocation
        CHECK (invalidity_date IS NULL OR invalidity_date <= revoked_at)
);

-- Serves: building a CRL, "the revoked certificates of a CA that have not yet expired"
-- (WHERE ca_id = $1 AND not_after > $2), as an index-only scan.
CREATE INDEX revoked_certificates_crl_idx ON revoked_certificates (ca_id, not_after)
    INCLUDE (serial_number, revoked_at, reason, invalidity_date);
-- Serves: a user's revocations, and ON DELETE SET NULL of owner_id.
CREATE INDEX revoked_certificates_owner_idx ON revoked_certificates (owner_id) WHERE owner_id IS NOT NULL;
-- Serves: ON DELETE SET NULL of revoked_by.
CREATE INDEX revoked_certificates_revoked_by_idx ON revoked_certificates (revoked_by) WHERE revoked_by IS NOT NULL;

ALTER TABLE revoked_certificates ENABLE ROW LEVEL SECURITY;
CREATE POLICY revoked_certificates_owner_or_admin ON revoked_certificates TO keyinfra_app
    USING (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()))
    WITH CHECK (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));

-- Revocation is permanent: no UPDATE or DELETE for the application.
GRANT SELECT, INSERT ON revoked_certificates TO keyinfra_app;

-- Keeps revoked_certificates.owner_id equal to the certificate's owner when an admin
-- reassigns a certificate. SECURITY DEFINER: the application may not UPDATE revocations.
CREATE FUNCTION certificates_follow_owner() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE revoked_certificates SET owner_id = NEW.owner_id WHERE certificate_id = NEW.id;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION certificates_follow_owner() FROM PUBLIC;

CREATE TRIGGER certificates_follow_owner AFTER UPDATE OF owner_id ON certificates
    FOR EACH ROW WHEN (NEW.owner_id IS DISTINCT FROM OLD.owner_id)
    EXECUTE FUNCTION certificates_follow_owner();

CREATE TABLE crls (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: CRLs are derived data of their CA (which can only be deleted once it has no
    -- certificates, see RESTRICT above).
    ca_id       uuid        NOT NULL REFERENCES certificate_authorities (id) ON DELETE CASCADE,
    crl_number  bigint      NOT NULL,
    this_update timestamptz NOT NULL,
    next_update timestamptz NOT NULL,
    crl_der     bytea       NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT crls_ca_number_key UNIQUE (ca_id, crl_number),
    CONSTRAINT crls_number_positive CHECK (crl_number >= 1),
    CONSTRAINT crls_update_order CHECK (this_update < next_update),
    CONSTRAINT crls_der_nonempty CHECK (octet_length(crl_der) > 0)
);
-- The unique index on (ca_id, crl_number) also serves "the latest CRL of a CA"
-- (ORDER BY crl_number DESC LIMIT 1).

-- CRLs are public, served without login; only SYSTEM and ADMIN publish them.
ALTER TABLE crls ENABLE ROW LEVEL SECURITY;
CREATE POLICY crls_read ON crls FOR SELECT TO keyinfra_app USING (true);
CREATE POLICY crls_insert ON crls FOR INSERT TO keyinfra_app WITH CHECK ((SELECT keyinfra_sees_all()));

GRANT SELECT, INSERT ON crls TO keyinfra_app;
