-- Back to migration 0020's SQL-language bodies (the same statements; grants unchanged).

CREATE OR REPLACE FUNCTION keyinfra_claim_enrollment_challenge(p_secret_hash bytea, p_now timestamptz)
    RETURNS TABLE (id uuid, owner_id uuid, profile text, validity_days integer, subject text,
                   names jsonb, approval boolean, expires_at timestamptz)
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
BEGIN ATOMIC
    UPDATE enrollment_challenges AS c SET used_at = p_now
    WHERE c.secret_hash = p_secret_hash
      AND c.used_at IS NULL AND c.withdrawn_at IS NULL AND c.expires_at > p_now
      AND EXISTS (SELECT 1 FROM users AS u WHERE u.id = c.owner_id AND NOT u.disabled)
    RETURNING c.id, c.owner_id, c.profile, c.validity_days, c.subject, c.names, c.approval,
              c.expires_at;
END;

-- Gives a claimed challenge back (the enrollment failed through no fault of the device):
-- true if it was used and had produced no certificate. Its expiry still applies.
CREATE OR REPLACE FUNCTION keyinfra_release_enrollment_challenge(p_id uuid) RETURNS boolean
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
BEGIN ATOMIC
    WITH released AS (
        UPDATE enrollment_challenges AS c SET used_at = NULL
        WHERE c.id = p_id AND c.used_at IS NOT NULL AND c.certificate_id IS NULL
        RETURNING 1
    )
    SELECT count(*) = 1 FROM released;
END;

-- Records the certificate a claimed challenge produced, once: true if the challenge is used,
-- has no certificate yet, and the certificate belongs to the challenge's owner.
CREATE OR REPLACE FUNCTION keyinfra_record_enrollment_certificate(p_id uuid, p_certificate_id uuid)
    RETURNS boolean
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
BEGIN ATOMIC
    WITH recorded AS (
        UPDATE enrollment_challenges AS c SET certificate_id = p_certificate_id
        WHERE c.id = p_id AND c.used_at IS NOT NULL AND c.certificate_id IS NULL
          AND EXISTS (SELECT 1 FROM certificate_serials AS s
                      WHERE s.certificate_id = p_certificate_id AND s.owner_id = c.owner_id)
        RETURNING 1
    )
    SELECT count(*) = 1 FROM recorded;
END;
