-- Back to 0030: the link only links challenges a claim marked used, and a link that finds
-- nothing leaves the certificate recorded.

CREATE OR REPLACE FUNCTION keyinfra_record_enrollment_certificates(p_challenge_id uuid[], p_certificate_id uuid[])
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
