-- For ./scripts/bench-record-issuances only (SCHEMA_CHANGE=scripts/bench/schema-changes/registry-by-statement.sql): the serial registry row written by the issue's statement instead of the trigger, a foreign key keeping every certificate registered.
-- Measurement, never for a real database (issue 22, docs/benchmarks.md).
DROP TRIGGER certificates_register_serials ON certificates;
ALTER TABLE certificates ADD CONSTRAINT certificates_registered FOREIGN KEY (id) REFERENCES certificate_serials (certificate_id);
GRANT INSERT ON certificate_serials TO keyinfra_app;
CREATE POLICY certificate_serials_insert ON certificate_serials FOR INSERT TO keyinfra_app WITH CHECK (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));
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
    ), new_serials AS (
        INSERT INTO public.certificate_serials (certificate_id, ca_id, serial_number, not_after, owner_id)
        SELECT i.id, i.ca_id, i.serial_number, i.not_after, i.owner_id FROM input AS i
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
