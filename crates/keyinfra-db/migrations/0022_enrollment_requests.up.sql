-- 0022 enrollments waiting for an ADMIN (issue 19): a device presented a challenge created
-- with "approval": true. Its request is kept here, PENDING, until an ADMIN approves it
-- (the certificate is then issued, under the challenge owner's policy, and the device
-- collects it by polling) or rejects it.
--
-- * One request per challenge (UNIQUE challenge_id): a challenge is claimed once, so the
--   table grows no faster than challenges do (at most 100 live ones per owner).
-- * The device is identified by its transaction id and the key that signed its request
--   (SHA-256 of the SubjectPublicKeyInfo): RFC 8894 3.3.3 has a poll carry the same
--   transaction id, signed with the same key. A poll matching both proves possession of
--   the key the certificate will be for, so it may collect it; the id alone proves nothing.
-- * The challenge's terms (profile, validity, pinned subject and names) are copied here
--   when the request is made: the approval issues exactly what the device would have got
--   without approval.
-- * decided_at/decided_by mark a decision; an approval that issued sets certificate_id.
--   An approval is taken before the certificate is issued (so that two ADMINs approving at
--   once issue once); a replica that stops between the two leaves 'approved' without a
--   certificate, which the application lets an ADMIN approve again after 5 minutes.
CREATE TABLE enrollment_requests (
    id               uuid        PRIMARY KEY DEFAULT keyinfra_uuid_v7(),
    -- CASCADE: with its challenge (and so with its owner) the request goes.
    challenge_id     uuid        NOT NULL REFERENCES enrollment_challenges (id) ON DELETE CASCADE,
    owner_id         uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    channel          text        NOT NULL,
    transaction_id   text        NOT NULL,
    requester_key_sha256 bytea   NOT NULL,
    csr_der          bytea       NOT NULL,
    -- What the device asked for, as the list shows it (the CSR is what counts).
    requested_subject text,
    -- The challenge's terms.
    profile          text        NOT NULL,
    validity_days    integer,
    subject          text,
    names            jsonb,
    status           text        NOT NULL DEFAULT 'pending',
    created_at       timestamptz NOT NULL,
    decided_at       timestamptz,
    decided_by       uuid        REFERENCES users (id) ON DELETE SET NULL,
    reason           text,
    -- SET NULL: retention removes the registry row long after expiry.
    certificate_id   uuid        REFERENCES certificate_serials (certificate_id) ON DELETE SET NULL,

    CONSTRAINT enrollment_requests_challenge_key UNIQUE (challenge_id),
    CONSTRAINT enrollment_requests_channel_valid CHECK (channel IN ('scep', 'est')),
    CONSTRAINT enrollment_requests_transaction_valid
        CHECK (length(transaction_id) BETWEEN 1 AND 128),
    CONSTRAINT enrollment_requests_key_hash_length CHECK (octet_length(requester_key_sha256) = 32),
    CONSTRAINT enrollment_requests_csr_size CHECK (octet_length(csr_der) BETWEEN 1 AND 65536),
    CONSTRAINT enrollment_requests_requested_subject_valid
        CHECK (requested_subject IS NULL OR length(requested_subject) <= 2048),
    CONSTRAINT enrollment_requests_status_valid
        CHECK (status IN ('pending', 'approved', 'rejected')),
    CONSTRAINT enrollment_requests_decision
        CHECK ((status = 'pending') = (decided_at IS NULL)),
    CONSTRAINT enrollment_requests_certificate_when_approved
        CHECK (certificate_id IS NULL OR status = 'approved'),
    CONSTRAINT enrollment_requests_reason_valid CHECK (reason IS NULL OR length(reason) <= 1024)
);
COMMENT ON TABLE enrollment_requests IS
    'Enrollments waiting for (or decided by) an ADMIN: challenges with approval.';

-- Serves: a device's poll (transaction id and key).
CREATE INDEX enrollment_requests_poll_idx
    ON enrollment_requests (transaction_id, requester_key_sha256);
-- Serves: the pending list, newest first (small: pending requests are few).
CREATE INDEX enrollment_requests_pending_idx ON enrollment_requests (created_at DESC, id DESC)
    WHERE status = 'pending';
-- Serves: a user's requests, and ON DELETE CASCADE of owner_id.
CREATE INDEX enrollment_requests_owner_idx ON enrollment_requests (owner_id, created_at DESC);
-- Serves: ON DELETE SET NULL of decided_by and certificate_id.
CREATE INDEX enrollment_requests_decided_by_idx ON enrollment_requests (decided_by)
    WHERE decided_by IS NOT NULL;
CREATE INDEX enrollment_requests_certificate_idx ON enrollment_requests (certificate_id)
    WHERE certificate_id IS NOT NULL;

-- A USER sees their own devices' requests; ADMIN and SYSTEM all. Only the owner's identity
-- (the device writes as its owner) inserts; deciding is ADMIN's (checked again here).
ALTER TABLE enrollment_requests ENABLE ROW LEVEL SECURITY;
CREATE POLICY enrollment_requests_read ON enrollment_requests FOR SELECT TO keyinfra_app
    USING (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));
CREATE POLICY enrollment_requests_insert ON enrollment_requests FOR INSERT TO keyinfra_app
    WITH CHECK (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));
CREATE POLICY enrollment_requests_decide ON enrollment_requests FOR UPDATE TO keyinfra_app
    USING ((SELECT keyinfra_sees_all())) WITH CHECK ((SELECT keyinfra_sees_all()));
GRANT SELECT, INSERT ON enrollment_requests TO keyinfra_app;
GRANT UPDATE (status, decided_at, decided_by, reason, certificate_id)
    ON enrollment_requests TO keyinfra_app;
