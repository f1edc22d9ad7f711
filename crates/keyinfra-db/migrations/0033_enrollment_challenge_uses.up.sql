-- 0033 a challenge's use is a row of its own (issue 20).
--
-- After 0032 the last thing an EST enrollment cost beyond a REST issue was the row update
-- that recorded the use on enrollment_challenges: a non-HOT update (certificate_id is
-- indexed) re-checking the table's eight CHECKs and its foreign key, about 0.1 ms of
-- PostgreSQL per enrollment. Recording the use as an INSERT into a narrow table (one heap
-- row, one primary-key entry) took EST from 0.91-0.95 of REST to 0.96-1.01 at concurrency 1
-- and from 0.81-0.85 to 0.87-0.91 at 16 (docs/benchmarks.md, Issue 20, "the use in a table
-- of its own").
--
-- * enrollment_challenge_uses: one row per used challenge; its primary key makes the use
--   one-time, whichever replica signed. Certificates made before this migration move here.
--   The challenge row is no longer updated by a use; `used_at` on it is now only a database
--   claim's (released again if its enrollment fails), `certificate_id` only history.
-- * A challenge is used when it has a use row, or a claim holds it (`used_at`); every
--   reader below says so: the claim (one and many), release, the link. The application
--   reads uses through row-level security: a use is visible with its challenge.
-- * The link locks the challenge row FOR SHARE: a withdrawal (which locks it FOR UPDATE and
--   then looks for a use, keyinfra_db::enrollment_challenges::withdraw) waits for it, and
--   a use waiting for a withdrawal's lock re-checks `withdrawn_at` on the row it then reads.
-- * Retention deletes serials; the use keeps its row (the challenge stays used) and loses
--   its certificate_id, as the foreign key on the challenge did (a statement trigger, one
--   scan per deleting statement).

CREATE TABLE enrollment_challenge_uses (
    challenge_id   uuid PRIMARY KEY REFERENCES enrollment_challenges (id) ON DELETE CASCADE,
    certificate_id uuid,
    used_at        timestamptz NOT NULL DEFAULT statement_timestamp()
);
ALTER TABLE enrollment_challenge_uses ENABLE ROW LEVEL SECURITY;
ALTER TABLE enrollment_challenge_uses FORCE ROW LEVEL SECURITY;
-- A use is visible exactly when its challenge is (the subquery is itself under the
-- challenges' policy).
CREATE POLICY enrollment_challenge_uses_with_challenge ON enrollment_challenge_uses
    FOR SELECT TO keyinfra_app
    USING (EXISTS (SELECT 1 FROM enrollment_challenges AS c WHERE c.id = challenge_id));
GRANT SELECT ON enrollment_challenge_uses TO keyinfra_app;

INSERT INTO enrollment_challenge_uses (challenge_id, certificate_id, used_at)
SELECT id, certificate_id, used_at FROM enrollment_challenges WHERE certificate_id IS NOT NULL;

CREATE FUNCTION keyinfra_forget_dropped_certificates() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE enrollment_challenge_uses AS u SET certificate_id = NULL
    WHERE u.certificate_id IN (SELECT d.certificate_id FROM dropped AS d);
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION keyinfra_forget_dropped_certificates() FROM PUBLIC;
CREATE TRIGGER certificate_serials_forget_challenge_uses
    AFTER DELETE ON certificate_serials REFERENCING OLD TABLE AS dropped
    FOR EACH STATEMENT EXECUTE FUNCTION keyinfra_forget_dropped_certificates();

-- The one-challenge link (0020, 0026) has had no caller since 0030 linked whole batches, and
-- it writes certificate_id on the challenge row, which no longer decides anything: gone,
-- so that no role can link a challenge beside its use.
DROP FUNCTION keyinfra_record_enrollment_certificate(uuid, uuid);

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
      AND NOT EXISTS (SELECT 1 FROM enrollment_challenge_uses AS x WHERE x.challenge_id = c.id)
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
      AND NOT EXISTS (SELECT 1 FROM enrollment_challenge_uses AS x WHERE x.challenge_id = c.id)
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
    WHERE c.id = p_id AND c.used_at IS NOT NULL AND c.certificate_id IS NULL
      AND NOT EXISTS (SELECT 1 FROM enrollment_challenge_uses AS x WHERE x.challenge_id = c.id);
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
    -- A challenge a claim holds, or an unused one that is unwithdrawn, needs no approval and
    -- whose owner is enabled; the certificate must be its owner's. A second use conflicts
    -- on the primary key and is not counted.
    INSERT INTO enrollment_challenge_uses (challenge_id, certificate_id)
    SELECT c.id, p_certificate_id[array_position(p_challenge_id, c.id)]
    FROM enrollment_challenges AS c
    WHERE c.id = ANY (p_challenge_id) AND c.certificate_id IS NULL
      AND (c.used_at IS NOT NULL
           OR (c.withdrawn_at IS NULL AND NOT c.approval
               AND EXISTS (SELECT 1 FROM users AS o WHERE o.id = c.owner_id AND NOT o.disabled)))
      AND EXISTS (SELECT 1 FROM certificate_serials AS s
                  WHERE s.certificate_id = p_certificate_id[array_position(p_challenge_id, c.id)]
                    AND s.owner_id = c.owner_id)
    FOR SHARE OF c
    ON CONFLICT (challenge_id) DO NOTHING;
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
