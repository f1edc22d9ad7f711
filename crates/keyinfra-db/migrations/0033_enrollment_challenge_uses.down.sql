-- Back to 0032: uses are folded back into their challenges (used_at, certificate_id), and
-- the functions read and write the challenge row again.

DROP TRIGGER certificate_serials_forget_challenge_uses ON certificate_serials;
DROP FUNCTION keyinfra_forget_dropped_certificates();

UPDATE enrollment_challenges AS c
SET used_at = coalesce(c.used_at, u.used_at), certificate_id = u.certificate_id
FROM enrollment_challenge_uses AS u
WHERE u.challenge_id = c.id;

DROP TABLE enrollment_challenge_uses;

CREATE FUNCTION keyinfra_record_enrollment_certificate(p_id uuid, p_certificate_id uuid)
    RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE enrollment_challenges AS c SET certificate_id = p_certificate_id
    WHERE c.id = p_id AND c.used_at IS NOT NULL AND c.certificate_id IS NULL
      AND EXISTS (SELECT 1 FROM certificate_serials AS s
                  WHERE s.certificate_id = p_certificate_id AND s.owner_id = c.owner_id);
    RETURN FOUND;
END
$$;
REVOKE ALL ON FUNCTION keyinfra_record_enrollment_certificate(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_record_enrollment_certificate(uuid, uuid) TO keyinfra_app;

CREATE OR REPLACE FUNCTION keyinfra_claim_enrollment_challenge(p_secret_hash bytea, p_now timestamptz)
    RETURNS TABLE (id uuid, owner_id uuid, profile text, validity_days integer, subject text,
                   names jsonb, approval boolean, expires_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    RETURN QUERY
    UPDATE enrollment_challenges AS c SET used_at = p_now
    WHERE c.secret_hash = p_secret_hash
      AND c.used_at IS NULL AND c.withdrawn_at IS NULL AND c.expires_at > p_now
      AND EXISTS (SELECT 1 FROM users AS u WHERE u.id = c.owner_id AND NOT u.disabled)
    RETURNING c.id, c.owner_id, c.profile, c.validity_days, c.subject, c.names, c.approval,
              c.expires_at;
END
$$;

CREATE OR REPLACE FUNCTION keyinfra_claim_enrollment_challenges(p_secret_hashes bytea[], p_nows timestamptz[])
    RETURNS TABLE (claim_position bigint, id uuid, owner_id uuid, profile text,
                   validity_days integer, subject text, names jsonb, approval boolean,
                   expires_at timestamptz)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
    SET enable_seqscan = off
AS $$
BEGIN
    IF cardinality(p_secret_hashes) IS DISTINCT FROM cardinality(p_nows) THEN
        RAISE EXCEPTION 'p_secret_hashes and p_nows differ in length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN QUERY
    UPDATE enrollment_challenges AS c
    SET used_at = p_nows[array_position(p_secret_hashes, c.secret_hash)]
    WHERE c.secret_hash = ANY (p_secret_hashes)
      AND c.used_at IS NULL AND c.withdrawn_at IS NULL
      AND c.expires_at > p_nows[array_position(p_secret_hashes, c.secret_hash)]
      AND EXISTS (SELECT 1 FROM users AS o WHERE o.id = c.owner_id AND NOT o.disabled)
    RETURNING array_position(p_secret_hashes, c.secret_hash)::bigint, c.id, c.owner_id,
              c.profile, c.validity_days, c.subject, c.names, c.approval, c.expires_at;
END
$$;

CREATE OR REPLACE FUNCTION keyinfra_release_enrollment_challenge(p_id uuid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE enrollment_challenges AS c SET used_at = NULL
    WHERE c.id = p_id AND c.used_at IS NOT NULL AND c.certificate_id IS NULL;
    RETURN FOUND;
END
$$;

CREATE OR REPLACE FUNCTION keyinfra_record_enrollment_certificates(p_challenge_id uuid[], p_certificate_id uuid[])
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
    SET enable_seqscan = off
AS $$
DECLARE
    linked integer;
    named integer;
BEGIN
    IF cardinality(p_challenge_id) IS DISTINCT FROM cardinality(p_certificate_id) THEN
        RAISE EXCEPTION 'p_challenge_id and p_certificate_id differ in length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE enrollment_challenges AS c
    SET certificate_id = p_certificate_id[array_position(p_challenge_id, c.id)],
        used_at = coalesce(c.used_at, statement_timestamp())
    WHERE c.id = ANY (p_challenge_id) AND c.certificate_id IS NULL
      AND (c.used_at IS NOT NULL
           OR (c.withdrawn_at IS NULL AND NOT c.approval
               AND EXISTS (SELECT 1 FROM users AS o WHERE o.id = c.owner_id AND NOT o.disabled)))
      AND EXISTS (SELECT 1 FROM certificate_serials AS s
                  WHERE s.certificate_id = p_certificate_id[array_position(p_challenge_id, c.id)]
                    AND s.owner_id = c.owner_id);
    GET DIAGNOSTICS linked = ROW_COUNT;
    -- An expression, not a query: no executor started for it.
    named := cardinality(array_remove(p_challenge_id, NULL));
    IF linked < named THEN
        RAISE EXCEPTION 'an enrollment challenge was used, withdrawn or its owner disabled before its certificate was recorded'
            USING ERRCODE = 'KI410';
    END IF;
    RETURN linked;
END
$$;
