-- Migration 0020's challenge functions, the same statements in PL/pgSQL. As SQL-language
-- functions (BEGIN ATOMIC, SECURITY DEFINER, SET search_path: never inlined) each call
-- read the stored body back, planned it and ran it: in scripts/bench-est at concurrency 16,
-- about half of PostgreSQL's CPU went to that (perf: fmgr_sql 29% of all samples,
-- pg_plan_query 12%). PL/pgSQL keeps each statement's plan for the session. Every SCEP and
-- EST enrollment calls claim and record once. Behaviour, grants and signatures unchanged.

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

CREATE OR REPLACE FUNCTION keyinfra_release_enrollment_challenge(p_id uuid) RETURNS boolean
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE enrollment_challenges AS c SET used_at = NULL
    WHERE c.id = p_id AND c.used_at IS NOT NULL AND c.certificate_id IS NULL;
    RETURN FOUND;
END
$$;

CREATE OR REPLACE FUNCTION keyinfra_record_enrollment_certificate(p_id uuid, p_certificate_id uuid)
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
