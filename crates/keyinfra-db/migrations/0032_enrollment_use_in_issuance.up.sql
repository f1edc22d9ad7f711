-- 0032 a certificate's own statement uses the challenge it was issued under (issue 20).
--
-- Until now an enrollment claimed its challenge with a statement of its own before the
-- certificate was signed (keyinfra_claim_enrollment_challenges), and the certificate's
-- statement only linked the claimed challenge. scripts/bench-est showed that statement to
-- be most of what EST costs beyond a REST issue (docs/benchmarks.md, Issue 20, "what is
-- left of the gap is the claim's statement"). So a replica now keeps the terms of the
-- challenges it made in memory (keyinfra_core::enrollment::live), signs a device's
-- certificate with no statement before it, and the link below does the use:
--
-- * a challenge the claim already marked used (another replica's, one made before a
--   restart, one held for approval) is linked as before;
-- * an unused one is used and linked in the same UPDATE, only if it is not withdrawn, does
--   not need approval, and its owner is enabled (what the claim checks; its expiry was
--   checked by the replica against the application's clock, which tests move, when it
--   handed the challenge out);
-- * the certificate must belong to the challenge's owner, as before;
-- * and if any challenge named in the batch was not linked (used by another request
--   meanwhile, withdrawn, its owner disabled, or named twice), the statement fails with
--   KI410, so that the certificate is not recorded. Before, a link that found nothing
--   changed nothing and the certificate stayed; that was safe only because the claim had
--   already decided. A batch that fails is retried member by member, so only the request
--   whose challenge is spent is refused.
--
-- used_at is the statement's time: the database decides the use now. No CHECK relates it
-- to created_at (which is the application's clock).

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
