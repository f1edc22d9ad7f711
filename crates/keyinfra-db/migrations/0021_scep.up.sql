-- SCEP (issue 19): the RA certificate each CA issues to itself. SCEP clients encrypt their
-- requests to an RSA key from GetCACert, and KeyInfra's CAs are often ECDSA, so each CA
-- certifies an RSA-2048 key that opens requests and signs replies. The CA key never sees a
-- SCEP message.
--
-- Like ocsp_responders: the newest unexpired RA serves; an older one stays until it
-- expires, because a device may still encrypt to the certificate it fetched earlier. The
-- key is sealed in private_keys (owner NULL: only SYSTEM reads it), so `keys rotate`
-- re-seals it too.
CREATE TABLE scep_registration_authorities (
    id              uuid        PRIMARY KEY DEFAULT keyinfra_uuid_v7(),
    -- CASCADE: a CA's RAs go with it.
    ca_id           uuid        NOT NULL REFERENCES certificate_authorities (id) ON DELETE CASCADE,
    certificate_der bytea       NOT NULL,
    -- RESTRICT: the key stays while its certificate row does (the orphan sweep below
    -- deletes it once the row is gone).
    private_key_id  uuid        NOT NULL REFERENCES private_keys (id) ON DELETE RESTRICT,
    not_before      timestamptz NOT NULL,
    not_after       timestamptz NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT scep_registration_authorities_validity CHECK (not_before < not_after),
    CONSTRAINT scep_registration_authorities_certificate_size
        CHECK (octet_length(certificate_der) BETWEEN 1 AND 65536)
);
-- Serves: "the newest RA of a CA" (WHERE ca_id = $1 ORDER BY not_after DESC), and the
-- lookup of every unexpired RA a request may be encrypted to.
CREATE INDEX scep_registration_authorities_ca_idx
    ON scep_registration_authorities (ca_id, not_after DESC);
CREATE INDEX scep_registration_authorities_key_idx
    ON scep_registration_authorities (private_key_id);

ALTER TABLE scep_registration_authorities ENABLE ROW LEVEL SECURITY;
-- RA certificates are public (GetCACert hands them to anyone); writing them is the
-- system's (the RA job, or the first SCEP request after a CA is created).
CREATE POLICY scep_registration_authorities_read ON scep_registration_authorities
    FOR SELECT TO keyinfra_app USING (true);
CREATE POLICY scep_registration_authorities_write ON scep_registration_authorities
    FOR INSERT TO keyinfra_app WITH CHECK ((SELECT keyinfra_sees_all()));
CREATE POLICY scep_registration_authorities_delete ON scep_registration_authorities
    FOR DELETE TO keyinfra_app USING ((SELECT keyinfra_sees_all()));
GRANT SELECT, INSERT, DELETE ON scep_registration_authorities TO keyinfra_app;

-- An RA's key is not an orphan while its RA row exists.
CREATE OR REPLACE FUNCTION delete_orphaned_private_keys(batch integer DEFAULT 10000) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
BEGIN ATOMIC
    WITH orphans AS (
        SELECT k.id FROM private_keys AS k
        WHERE NOT EXISTS (SELECT 1 FROM certificates AS c WHERE c.private_key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM certificate_authorities AS a WHERE a.private_key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM ocsp_responders AS o WHERE o.private_key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM scep_registration_authorities AS r
                          WHERE r.private_key_id = k.id)
        LIMIT batch
    ), gone AS (
        DELETE FROM private_keys WHERE id IN (SELECT id FROM orphans) RETURNING 1
    )
    SELECT count(*) FROM gone;
END;
