-- 0020 SCEP enrollment challenges (issue 19): one-time challenge passwords a user creates
-- for a device, which the device presents (the PKCS#10 challengePassword) to enroll for a
-- certificate that then belongs to that user, under that user's policy and quota.
--
-- * The secret is never stored, only its SHA-256. A fast hash is right here, unlike for
--   passwords: the secret is 32 symbols drawn uniformly from 32 (160 bits) by the server,
--   so there is nothing to guess from a dictionary and 2^160 candidates to try; a slow hash
--   would only make each SCEP request cost Argon2id work for no gain. A plain SHA-256 also
--   lets the claim find the row by an index on the hash (a salted hash could not be looked
--   up), which is why the column is UNIQUE.
-- * A device presents only the secret: its request runs before anyone knows the owner, so
--   row-level security cannot find the row for it. Claiming therefore goes through the
--   SECURITY DEFINER function keyinfra_claim_enrollment_challenge(hash, now), which marks an
--   unused, unexpired, unwithdrawn challenge of an enabled owner used and returns it, in
--   one UPDATE (so two devices racing with the same secret cannot both win). What it gives
--   keyinfra_app under any identity (migration 0014's rule): the row of a secret the caller
--   already holds, once. Passing the time lets tests and the core's Clock decide "expired";
--   a caller who passes an old time still needs the secret.
-- * keyinfra_app gets no UPDATE of used_at or certificate_id, and may not even read
--   secret_hash: only the three definer functions change the claim state. Its one direct
--   UPDATE is withdrawn_at (withdrawing, under row-level security). The release and record
--   functions take a challenge id, so a forged identity could release a used challenge;
--   that re-opens a secret it would still need to know, and a challenge that produced a
--   certificate is never released.

CREATE TABLE enrollment_challenges (
    id             uuid        PRIMARY KEY DEFAULT keyinfra_uuid_v7(),
    -- CASCADE: a challenge is its owner's credential; a deleted user's devices must not
    -- enroll, and nobody else could own what they would get.
    owner_id       uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- SET NULL: the audit log keeps who created it.
    created_by     uuid        REFERENCES users (id) ON DELETE SET NULL,
    -- SHA-256 of the challenge's UTF-8 bytes (see above).
    secret_hash    bytea       NOT NULL,
    -- What the device may ask for: the profile, and optionally a validity, a subject
    -- (RFC 4514) and subject alternative names (typed, `DNS:name`, `IP:address`, as
    -- keyinfra_pki's SubjectAltName::to_tagged writes them and the issue API reads them).
    profile        text        NOT NULL,
    validity_days  integer,
    subject        text,
    names          jsonb,
    -- The enrollment waits (SCEP PENDING) until an ADMIN approves it.
    approval       boolean     NOT NULL DEFAULT false,
    -- Both from the core's Clock, like a certificate's validity, so that expires_at and
    -- the claim's "now" are read from the same clock.
    created_at     timestamptz NOT NULL,
    expires_at     timestamptz NOT NULL,
    used_at        timestamptz,
    withdrawn_at   timestamptz,
    -- The certificate the enrollment produced. SET NULL: retention removes the registry row
    -- two years after the certificate expired; the challenge, long used, stays.
    certificate_id uuid        REFERENCES certificate_serials (certificate_id) ON DELETE SET NULL,

    CONSTRAINT enrollment_challenges_secret_hash_key UNIQUE (secret_hash),
    CONSTRAINT enrollment_challenges_secret_hash_length CHECK (octet_length(secret_hash) = 32),
    CONSTRAINT enrollment_challenges_profile_valid CHECK (length(profile) BETWEEN 1 AND 64),
    CONSTRAINT enrollment_challenges_validity_valid
        CHECK (validity_days IS NULL OR validity_days BETWEEN 1 AND 36500),
    CONSTRAINT enrollment_challenges_subject_valid
        CHECK (subject IS NULL OR length(subject) BETWEEN 1 AND 1024),
    CONSTRAINT enrollment_challenges_names_valid
        CHECK (names IS NULL OR (jsonb_typeof(names) = 'array'
                                 AND jsonb_array_length(names) BETWEEN 1 AND 100)),
    -- At most 7 days, the API's limit.
    CONSTRAINT enrollment_challenges_expiry_valid
        CHECK (expires_at > created_at AND expires_at <= created_at + interval '7 days'),
    -- Used or withdrawn, never both: withdrawing refuses a used challenge, claiming a
    -- withdrawn one, and this decides a race between them.
    CONSTRAINT enrollment_challenges_used_or_withdrawn CHECK (used_at IS NULL OR withdrawn_at IS NULL),
    CONSTRAINT enrollment_challenges_certificate_when_used
        CHECK (certificate_id IS NULL OR used_at IS NOT NULL)
);
COMMENT ON TABLE enrollment_challenges IS
    'One-time SCEP challenge passwords (SHA-256 only): claimed through keyinfra_claim_enrollment_challenge.';

-- Serves: a user's challenges newest first, the live count under the create lock, and ON
-- DELETE CASCADE of owner_id.
CREATE INDEX enrollment_challenges_owner_idx ON enrollment_challenges (owner_id, created_at DESC, id DESC);
-- Serves: an ADMIN's list of every challenge, newest first.
CREATE INDEX enrollment_challenges_created_idx ON enrollment_challenges (created_at DESC, id DESC);
-- Serves: ON DELETE SET NULL of created_by and of certificate_id.
CREATE INDEX enrollment_challenges_created_by_idx ON enrollment_challenges (created_by)
    WHERE created_by IS NOT NULL;
CREATE INDEX enrollment_challenges_certificate_idx ON enrollment_challenges (certificate_id)
    WHERE certificate_id IS NOT NULL;

-- A USER sees and changes their own challenges; ADMIN and SYSTEM all; no identity none.
ALTER TABLE enrollment_challenges ENABLE ROW LEVEL SECURITY;
CREATE POLICY enrollment_challenges_owner_or_admin ON enrollment_challenges TO keyinfra_app
    USING (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()))
    WITH CHECK (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));

-- Column grants (see above): no secret_hash to read, no claim state to write, no DELETE
-- (a challenge stays as the record of what enrolled).
GRANT SELECT (id, owner_id, created_by, profile, validity_days, subject, names, approval,
              created_at, expires_at, used_at, withdrawn_at, certificate_id)
    ON enrollment_challenges TO keyinfra_app;
GRANT INSERT (owner_id, created_by, secret_hash, profile, validity_days, subject, names,
              approval, created_at, expires_at)
    ON enrollment_challenges TO keyinfra_app;
GRANT UPDATE (withdrawn_at) ON enrollment_challenges TO keyinfra_app;

-- Claims the challenge whose secret hashes to p_secret_hash, if it is unused, unwithdrawn,
-- unexpired at p_now and its owner is enabled: marks it used and returns it; else nothing.
-- One UPDATE: the row lock makes a concurrent second claim, or a withdrawal, see it used.
CREATE FUNCTION keyinfra_claim_enrollment_challenge(p_secret_hash bytea, p_now timestamptz)
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
REVOKE ALL ON FUNCTION keyinfra_claim_enrollment_challenge(bytea, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_claim_enrollment_challenge(bytea, timestamptz) TO keyinfra_app;

-- Gives a claimed challenge back (the enrollment failed through no fault of the device):
-- true if it was used and had produced no certificate. Its expiry still applies.
CREATE FUNCTION keyinfra_release_enrollment_challenge(p_id uuid) RETURNS boolean
    LANGUAGE sql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
BEGIN ATOMIC
    WITH released AS (
        UPDATE enrollment_challenges AS c SET used_at = NULL
        WHERE c.id = p_id AND c.used_at IS NOT NULL AND c.certificate_id IS NULL
        RETURNING 1
    )
    SELECT count(*) = 1 FROM released;
END;
REVOKE ALL ON FUNCTION keyinfra_release_enrollment_challenge(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_release_enrollment_challenge(uuid) TO keyinfra_app;

-- Records the certificate a claimed challenge produced, once: true if the challenge is used,
-- has no certificate yet, and the certificate belongs to the challenge's owner.
CREATE FUNCTION keyinfra_record_enrollment_certificate(p_id uuid, p_certificate_id uuid)
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
REVOKE ALL ON FUNCTION keyinfra_record_enrollment_certificate(uuid, uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_record_enrollment_certificate(uuid, uuid) TO keyinfra_app;
