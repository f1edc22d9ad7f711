-- Issuance throughput, second step: one round trip per group-commit batch, and CHECKs that
-- PostgreSQL does not plan again for every statement.
--
-- 1. A batch of first issues (keyinfra_core::group_commit) took three round trips: BEGIN
--    with the token check and the identity, the multi-row INSERT, COMMIT. While they travel
--    the batch's members wait, and under load that wait is most of an issuance's latency.
--    keyinfra_record_issuances() does all of it in one call, sent outside any explicit
--    transaction: PostgreSQL runs it in an implicit transaction that commits when the call
--    returns, or rolls back entirely when anything in it fails. It is SECURITY INVOKER, so
--    row-level security applies to its INSERTs exactly as to the application's own, with
--    the identity it sets first (set_config(..., true): gone at COMMIT, as after BEGIN).
--    The INSERTs themselves are keyinfra_insert_issued(), which the one-transaction path
--    calls too, so both ways write the same rows with the same statement.
--
-- 2. The quota's lock-then-count moves into keyinfra_lock_and_count_active(), which both the
--    one-transaction path and the batch call, so the rule has one implementation.
--
-- 3. keyinfra_san_list_is_valid() used a sub-SELECT over unnest(), which PostgreSQL cannot
--    inline: every INSERT statement planned the function's query again, then called it per
--    row. keyinfra_serial_is_canonical() ran two regular expressions per row, twice per
--    certificate (certificates and the registry). Both now are single expressions that the
--    planner inlines into the CHECK (EXPLAIN VERBOSE of a SELECT calling them shows the
--    expression, not the call); what they accept is unchanged (the truth tables are in
--    keyinfra-db's tests). docs/benchmarks.md has the figures.

CREATE OR REPLACE FUNCTION keyinfra_serial_is_canonical(serial text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    -- One to twenty octets in uppercase hex, no leading zero octet: the same as
    -- '^([0-9A-F]{2}){1,20}$' and not '^00', without a regular expression.
    RETURN octet_length(serial) BETWEEN 2 AND 40
        AND octet_length(serial) % 2 = 0
        AND btrim(serial, '0123456789ABCDEF') = ''
        AND left(serial, 2) <> '00';

-- STABLE, not IMMUTABLE, because array_to_string() is STABLE (element output functions
-- may depend on settings; text's does not): the planner inlines a function only when its
-- body is no more volatile than the function claims to be.
CREATE OR REPLACE FUNCTION keyinfra_san_list_is_valid(sans text[]) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    -- Every element is TYPE:value with no control character, and none is NULL. The elements
    -- are matched as one newline-joined string, with NULLs written as U+0001 (a control
    -- character, so they fail). Newline is a control character too, so no element may hold
    -- one (else one element could pass as two); joined without a separator, any newline is
    -- an element's own.
    RETURN cardinality(sans) <= 1024
        AND (cardinality(sans) = 0
             OR (strpos(array_to_string(sans, ''), E'\n') = 0
                 AND array_to_string(sans, E'\n', E'\x01')
                     ~ '^(DNS|IP|EMAIL|URI):[^[:cntrl:]]+(\n(DNS|IP|EMAIL|URI):[^[:cntrl:]]+)*$'));

-- The quota's count of an owner's active, unexpired certificates, under a transaction-scoped
-- lock per owner, so that two concurrent issuances cannot both pass a quota of one left.
-- The lock and the count are separate statements on purpose: under READ COMMITTED each
-- statement of a VOLATILE function takes a new snapshot, so the count sees what a
-- predecessor that held the lock committed. Row-level security applies (SECURITY INVOKER).
CREATE FUNCTION keyinfra_lock_and_count_active(owner uuid, as_of timestamptz) RETURNS bigint
    LANGUAGE plpgsql VOLATILE
AS $$
DECLARE
    active bigint;
BEGIN
    PERFORM pg_advisory_xact_lock(hashtextextended('keyinfra.quota.' || owner::text, 0));
    SELECT count(*) INTO active FROM public.certificates AS c
    WHERE c.owner_id = owner AND c.status = 'ACTIVE' AND c.not_after > as_of;
    RETURN active;
END
$$;
REVOKE ALL ON FUNCTION keyinfra_lock_and_count_active(uuid, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_lock_and_count_active(uuid, timestamptz) TO keyinfra_app;

-- First issues, as parallel arrays (one element per issue): each a sealed key (or none, for
-- a CSR), a version-1 certificate (whose statement trigger registers the serial) and its
-- audit event, with one multi-row INSERT per table. Any failing row fails them all. Both
-- ways of recording a first issue use it: alone, inside the caller's transaction, and in a
-- batch through keyinfra_record_issuances(). plpgsql keeps the INSERT's plan for the
-- session. Row-level security applies (SECURITY INVOKER).
CREATE FUNCTION keyinfra_insert_issued(
    p_key_id uuid[], p_key_owner uuid[], p_key_algorithm text[], p_key_fingerprint bytea[],
    p_ciphertext bytea[], p_nonce bytea[], p_salt bytea[], p_kek_version integer[],
    p_id uuid[], p_ca_id uuid[], p_owner_id uuid[], p_serial_number text[], p_subject_dn text[],
    p_sans jsonb[], p_not_before timestamptz[], p_not_after timestamptz[],
    p_certificate_der bytea[], p_fingerprint_sha256 bytea[], p_algorithm text[],
    p_profile text[], p_created_by uuid[],
    p_actor_id uuid[], p_actor_name text[], p_action text[], p_target_type text[],
    p_target_id uuid[], p_details jsonb[])
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
            p_profile, p_created_by,
            p_actor_id, p_actor_name, p_action, p_target_type, p_target_id, p_details)
        AS i(key_id, key_owner, key_algorithm, key_fingerprint, ciphertext, nonce,
             salt, kek_version,
             id, ca_id, owner_id, serial_number, subject_dn, sans,
             not_before, not_after, certificate_der, fingerprint_sha256, algorithm,
             profile, created_by,
             actor_id, actor_name, action, target_type, target_id, details)
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
             fingerprint_sha256, key_algorithm, private_key_id, profile, created_by)
        SELECT i.id, i.ca_id, i.owner_id, i.serial_number, i.subject_dn,
               ARRAY(SELECT jsonb_array_elements_text(i.sans)), i.not_before, i.not_after,
               1, NULL, NULL, NULL, i.certificate_der, i.fingerprint_sha256,
               i.algorithm::key_algorithm, i.key_id, i.profile, i.created_by
        FROM input AS i
    )
    INSERT INTO public.audit_events (actor_id, actor_name, action, target_type, target_id, details)
    SELECT i.actor_id, i.actor_name, i.action, i.target_type, i.target_id, i.details
    FROM input AS i;
END
$$;
REVOKE ALL ON FUNCTION keyinfra_insert_issued FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_insert_issued TO keyinfra_app;

-- A group-commit batch in one call: first issues that share one identity. p_user_id and
-- p_role are the identity Database::begin would set; with p_token_issued_at the bearer's
-- token is checked first, as Database::begin checks it (a NULL skips the check, as for the
-- actors that carry no token: that gives nothing keyinfra_app could not do with set_config
-- itself). p_quota_owner and p_quota_limit pair each owner whose quota applies with their
-- limit, owners in a fixed order so that two batches never wait for each other's locks in
-- opposite orders; how many certificates the batch adds for an owner is counted here from
-- p_owner_id, not trusted from the caller. p_as_of is the instant the quota counts active
-- certificates at. Any failure (a token no longer valid, a quota reached, a serial
-- collision, an unknown owner) fails the whole call and writes nothing; the caller then
-- records each issue on its own, which answers each exactly.
CREATE FUNCTION keyinfra_record_issuances(
    p_user_id text, p_role text, p_token_issued_at timestamptz,
    p_quota_owner uuid[], p_quota_limit bigint[], p_as_of timestamptz,
    p_key_id uuid[], p_key_owner uuid[], p_key_algorithm text[], p_key_fingerprint bytea[],
    p_ciphertext bytea[], p_nonce bytea[], p_salt bytea[], p_kek_version integer[],
    p_id uuid[], p_ca_id uuid[], p_owner_id uuid[], p_serial_number text[], p_subject_dn text[],
    p_sans jsonb[], p_not_before timestamptz[], p_not_after timestamptz[],
    p_certificate_der bytea[], p_fingerprint_sha256 bytea[], p_algorithm text[],
    p_profile text[], p_created_by uuid[],
    p_actor_id uuid[], p_actor_name text[], p_action text[], p_target_type text[],
    p_target_id uuid[], p_details jsonb[])
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
    PERFORM keyinfra_insert_issued(
            p_key_id, p_key_owner, p_key_algorithm, p_key_fingerprint, p_ciphertext, p_nonce,
            p_salt, p_kek_version,
            p_id, p_ca_id, p_owner_id, p_serial_number, p_subject_dn, p_sans,
            p_not_before, p_not_after, p_certificate_der, p_fingerprint_sha256, p_algorithm,
            p_profile, p_created_by,
            p_actor_id, p_actor_name, p_action, p_target_type, p_target_id, p_details);
END
$$;
REVOKE ALL ON FUNCTION keyinfra_record_issuances FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_record_issuances TO keyinfra_app;
