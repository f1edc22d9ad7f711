-- For ./scripts/bench-record-issuances only (SCHEMA_CHANGE=scripts/bench/schema-changes/insert-inlined.sql): keyinfra_record_issuances with keyinfra_insert_issued's statement inlined (0027's bodies).
-- Measurement, never for a real database (issue 22, docs/benchmarks.md).
CREATE OR REPLACE FUNCTION keyinfra_record_issuances(
    p_user_id text, p_role text, p_token_issued_at timestamptz,
    p_quota_owner uuid[], p_quota_limit bigint[], p_as_of timestamptz,
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
DECLARE
    active bigint;
    adding bigint;
BEGIN
    IF coalesce(cardinality(p_quota_owner), 0) <> coalesce(cardinality(p_quota_limit), 0) THEN
        RAISE EXCEPTION 'p_quota_owner and p_quota_limit differ in length'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF p_token_issued_at IS NOT NULL THEN
        PERFORM keyinfra_check_token(p_user_id::uuid, p_role::user_role, p_token_issued_at);
    END IF;
    PERFORM set_config('keyinfra.user_id', p_user_id, true),
            set_config('keyinfra.user_role', p_role, true);
    FOR i IN 1 .. coalesce(cardinality(p_quota_owner), 0) LOOP
        active := keyinfra_lock_and_count_active(p_quota_owner[i], p_as_of);
        SELECT count(*) INTO adding FROM unnest(p_owner_id) AS o WHERE o = p_quota_owner[i];
        IF p_quota_limit[i] IS NULL OR active + adding > p_quota_limit[i] THEN
            RAISE EXCEPTION 'an owner in this batch would exceed the certificate quota'
                USING ERRCODE = 'KI422';
        END IF;
    END LOOP;
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
        PERFORM keyinfra_record_enrollment_certificate(l.challenge_id, l.certificate_id)
        FROM unnest(p_challenge_id, p_id) AS l(challenge_id, certificate_id)
        WHERE l.challenge_id IS NOT NULL;
    END IF;
END
$$;
