-- OCSP (issue 18): the delegated responder certificates each CA issues to itself, the
-- lookup the responder makes per request, and the notification that tells every replica
-- that a certificate was revoked.

-- A CA's responder certificates: the newest unexpired one signs; an older one stays until
-- it expires (a replica may still hold it). Its key is sealed in private_keys like every
-- other key (owner NULL: only SYSTEM reads it), so `keys rotate` re-seals it too.
CREATE TABLE ocsp_responders (
    id              uuid        PRIMARY KEY DEFAULT keyinfra_uuid_v7(),
    -- CASCADE: a CA's responders go with it.
    ca_id           uuid        NOT NULL REFERENCES certificate_authorities (id) ON DELETE CASCADE,
    certificate_der bytea       NOT NULL,
    -- RESTRICT: the key stays while its certificate row does (retention deletes the row
    -- first, then the key as an orphan).
    private_key_id  uuid        NOT NULL REFERENCES private_keys (id) ON DELETE RESTRICT,
    not_before      timestamptz NOT NULL,
    not_after       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT ocsp_responders_validity CHECK (not_before < not_after),
    CONSTRAINT ocsp_responders_certificate_size CHECK (octet_length(certificate_der) BETWEEN 1 AND 65536)
);
-- Serves: "the newest responder of a CA" (WHERE ca_id = $1 ORDER BY not_after DESC).
CREATE INDEX ocsp_responders_ca_idx ON ocsp_responders (ca_id, not_after DESC);
CREATE INDEX ocsp_responders_key_idx ON ocsp_responders (private_key_id);

ALTER TABLE ocsp_responders ENABLE ROW LEVEL SECURITY;
-- Responder certificates are public (they travel in every response); writing them is the
-- system's (the responder job, or the first request after a CA is created).
CREATE POLICY ocsp_responders_read ON ocsp_responders FOR SELECT TO keyinfra_app USING (true);
CREATE POLICY ocsp_responders_write ON ocsp_responders FOR INSERT TO keyinfra_app
    WITH CHECK ((SELECT keyinfra_sees_all()));
CREATE POLICY ocsp_responders_delete ON ocsp_responders FOR DELETE TO keyinfra_app
    USING ((SELECT keyinfra_sees_all()));
GRANT SELECT, INSERT, DELETE ON ocsp_responders TO keyinfra_app;

-- The status of certificates of one CA, by serial, as OCSP reports it: known (in the serial
-- registry, which outlives the certificate row until retention) and, if revoked, when and
-- why. A definer function: revocation status is public, but revoked_certificates' rows
-- (owner, who revoked) are not, so an anonymous caller gets these three columns only.
CREATE FUNCTION keyinfra_ocsp_status(p_ca_id uuid, p_serials text[])
    RETURNS TABLE (serial_number text, revoked_at timestamptz, reason revocation_reason)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
BEGIN ATOMIC
    SELECT s.serial_number, r.revoked_at, r.reason
    FROM certificate_serials AS s
    LEFT JOIN revoked_certificates AS r ON r.certificate_id = s.certificate_id
    WHERE s.ca_id = p_ca_id AND s.serial_number = ANY (p_serials);
END;
REVOKE ALL ON FUNCTION keyinfra_ocsp_status(uuid, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_ocsp_status(uuid, text[]) TO keyinfra_app;

-- Every revocation is announced on channel keyinfra_revocations as "<ca id> <serial>", at
-- commit: each replica's OCSP responder drops its cached answer for that certificate.
CREATE FUNCTION keyinfra_announce_revocation() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    PERFORM pg_notify('keyinfra_revocations', NEW.ca_id::text || ' ' || NEW.serial_number);
    RETURN NULL;
END
$$;
CREATE TRIGGER revoked_certificates_announce AFTER INSERT ON revoked_certificates
    FOR EACH ROW EXECUTE FUNCTION keyinfra_announce_revocation();

-- A responder's key is not an orphan while its responder row exists.
CREATE OR REPLACE FUNCTION delete_orphaned_private_keys(batch integer DEFAULT 10000) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
BEGIN ATOMIC
    WITH orphans AS (
        SELECT k.id FROM private_keys AS k
        WHERE NOT EXISTS (SELECT 1 FROM certificates AS c WHERE c.private_key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM certificate_authorities AS a WHERE a.private_key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM ocsp_responders AS o WHERE o.private_key_id = k.id)
        LIMIT batch
    ), gone AS (
        DELETE FROM private_keys WHERE id IN (SELECT id FROM orphans) RETURNING 1
    )
    SELECT count(*) FROM gone;
END;
