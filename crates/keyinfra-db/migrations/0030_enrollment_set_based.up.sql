-- 0030 an enrollment batch claims and links its challenges in one UPDATE each (issue 20).
--
-- Migration 0026 made the challenge functions PL/pgSQL, and 0027 moved the link into the
-- issuance; but a batch of N enrollments still called the per-challenge functions N times
-- (the claim once per secret through LATERAL, the link once per certificate through
-- PERFORM), and each call starts an executor for an UPDATE of enrollment_challenges, which
-- reads the table's eight CHECK constraints back from their stored form (stringToNode)
-- and prepares them. In scripts/bench-est at concurrency 16 that made PostgreSQL spend
-- 0.40 ms of CPU per EST enrollment against 0.16 ms per REST issue, with pg_strtok at the
-- top of its profile (2.2% of all samples against 0.3%). Here a batch claims with one
-- UPDATE and links with one UPDATE, whatever its size:
--
-- * keyinfra_claim_enrollment_challenges(hashes, nows): what
--   keyinfra_claim_enrollment_challenge does for each element, in one statement; each
--   claimed row comes back with the 1-based position of its hash. Of equal hashes only the
--   first is tried (array_position finds the first), as before.
-- * keyinfra_record_enrollment_certificates(challenge ids, certificate ids): what
--   keyinfra_record_enrollment_certificate does for each pair (NULL challenge ids are
--   skipped; of pairs naming one challenge the first counts), returning how many it
--   linked; keyinfra_insert_issued now calls it once instead of the other per element.
--
-- Both find their rows with `= ANY (array)` on a unique index and take each row's own
-- values with array_position (n <= 64 elements, so n^2 comparisons are nothing). Both run
-- with enable_seqscan off: PL/pgSQL keeps one generic plan per session, made when the
-- table may still be small, and a generic plan for an array of unknown length chose a
-- sequential scan of enrollment_challenges (measured: a joined unnest() did, and EST at
-- concurrency 1 fell from 610 to 430 enrollments/s as the table grew to 6,000 rows within
-- one benchmark). A claim or a link touches at most 64 rows, by key; no plan without the
-- index is ever right for it.
--
-- Measured with scripts/bench-est (3,000 each, two runs, old/new binaries alternating):
-- concurrency 1 unchanged (611/599 -> 600/594 EST/s), concurrency 16 2,030/2,085 ->
-- 2,175/2,211 EST/s.
--
-- Same checks, same grants, same definer rights. The single-element functions stay for
-- their other callers (a lone claim, the release).

CREATE FUNCTION keyinfra_claim_enrollment_challenges(p_secret_hashes bytea[], p_nows timestamptz[])
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
REVOKE ALL ON FUNCTION keyinfra_claim_enrollment_challenges(bytea[], timestamptz[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_claim_enrollment_challenges(bytea[], timestamptz[]) TO keyinfra_app;

CREATE FUNCTION keyinfra_record_enrollment_certificates(p_challenge_id uuid[], p_certificate_id uuid[])
    RETURNS integer
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
    SET enable_seqscan = off
AS $$
DECLARE
    linked integer;
BEGIN
    IF cardinality(p_challenge_id) IS DISTINCT FROM cardinality(p_certificate_id) THEN
        RAISE EXCEPTION 'p_challenge_id and p_certificate_id differ in length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE enrollment_challenges AS c
    SET certificate_id = p_certificate_id[array_position(p_challenge_id, c.id)]
    WHERE c.id = ANY (p_challenge_id) AND c.used_at IS NOT NULL AND c.certificate_id IS NULL
      AND EXISTS (SELECT 1 FROM certificate_serials AS s
                  WHERE s.certificate_id = p_certificate_id[array_position(p_challenge_id, c.id)]
                    AND s.owner_id = c.owner_id);
    GET DIAGNOSTICS linked = ROW_COUNT;
    RETURN linked;
END
$$;
REVOKE ALL ON FUNCTION keyinfra_record_enrollment_certificates(uuid[], uuid[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_record_enrollment_certificates(uuid[], uuid[]) TO keyinfra_app;

-- 0027's keyinfra_insert_issued with the link made in one call (same signature).
CREATE OR REPLACE FUNCTION keyinfra_insert_issued(
    p_key_id uuid[], p_key_owner uuid[], p_key_algorithm text[], p_key_fingerprint bytea[],
    p_ciphertext bytea[], p_nonce bytea[], p_salt bytea[], p_kek_version integer[],
    p_id uuid[], p_ca_id uuid[], p_owner_id uuid[], p_serial_number text[], p_subject_dn text[],
    p_sans jsonb[], p_not_before timestamptz[], p_not_after timestamptz[],
    p_certificate_der bytea[], p_fingerprint_sha256 bytea[], p_algorithm text[],
    p_profile text[], p_created_by uuid[], p_channel text[],
    p_audit_id uuid[], p_actor_id uuid[], p_actor_name text[], p_action text[],
    p_target_type text[], p_target_id uuid[], p_details jsonb[], p_challenge_id uuid[])
    RETURNS void
    LANGUAGE plpgsql VOLATILE
AS $$
BEGIN
    WITH input AS (
        SELECT * FROM unnest(
            p_key_id, p_key_owner, p_key_algorithm, p_key_fingerprint, p_ciphertext, p_nonce,
            p_salt, p_kek_version,
            p_id, p_ca_id, p_owner_id, p_serial_number, p_subject_dn, p_sans,
            p_not_before, p_not_after, p_certificate_der, p_fingerprint_sha256, p_algorithm,
            p_profile, p_created_by, p_channel,
            p_audit_id, p_actor_id, p_actor_name, p_action, p_target_type, p_target_id,
            p_details)
        AS i(key_id, key_owner, key_algorithm, key_fingerprint, ciphertext, nonce,
             salt, kek_version,
             id, ca_id, owner_id, serial_number, subject_dn, sans,
             not_before, not_after, certificate_der, fingerprint_sha256, algorithm,
             profile, created_by, channel,
             audit_id, actor_id, actor_name, action, target_type, target_id, details)
    ), new_keys AS (
        INSERT INTO public.private_keys
            (id, owner_id, algorithm, public_key_fingerprint, ciphertext, nonce, salt, kek_version)
        SELECT i.key_id, i.key_owner, i.key_algorithm::key_algorithm, i.key_fingerprint,
               i.ciphertext, i.nonce, i.salt, i.kek_version
        FROM input AS i WHERE i.key_id IS NOT NULL
    ), new_certificates AS (
        INSERT INTO public.certificates
            (id, ca_id, owner_id, serial_number, subject_dn, subject_alt_names, not_before,
             not_after, version, renewed_from, renewed_at, renewed_by, certificate_der,
             fingerprint_sha256, key_algorithm, private_key_id, profile, created_by, channel)
        SELECT i.id, i.ca_id, i.owner_id, i.serial_number, i.subject_dn,
               ARRAY(SELECT jsonb_array_elements_text(i.sans)), i.not_before, i.not_after,
               1, NULL, NULL, NULL, i.certificate_der, i.fingerprint_sha256,
               i.algorithm::key_algorithm, i.key_id, i.profile, i.created_by,
               i.channel::issuance_channel
        FROM input AS i
    )
    INSERT INTO public.audit_events
        (id, actor_id, actor_name, action, target_type, target_id, details)
    SELECT i.audit_id, i.actor_id, i.actor_name, i.action, i.target_type, i.target_id,
           i.details
    FROM input AS i;
    -- NULL when no issue in the call came from a challenge (the API, the CLI, renewals):
    -- then this costs one test of a parameter.
    IF p_challenge_id IS NOT NULL THEN
        PERFORM keyinfra_record_enrollment_certificates(p_challenge_id, p_id);
    END IF;
END
$$;
