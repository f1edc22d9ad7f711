-- 0028 ACME replay nonces that are spent once (issue 21, RFC 8555 6.5).
--
-- Every ACME response carries a fresh nonce and every signed request must spend one, on any
-- replica. Nonces are not stored when issued: each is MACed with a key derived from the
-- server secret the replicas share (keyinfra-core's acme::nonce), so any replica can tell
-- one it issued, and a client asking for nonces it never uses costs no row. What must be
-- shared is which nonces were spent: this table, keyed by the SHA-256 of the nonce (fixed
-- size whatever the client sends), with the instant the nonce would have expired anyway.
-- Spending is one INSERT ... ON CONFLICT DO NOTHING: a second use finds the row. A row is
-- useless after expires_at (the nonce is refused for its age by then), and the
-- `acme-nonces` job deletes such rows, so the table holds at most what clients spent within
-- one nonce lifetime.
--
-- Row-level security: any identity may spend a nonce (a client is nobody until its request
-- is verified), and so may see which hashes are spent: INSERT ... ON CONFLICT checks the new
-- row against the SELECT policy too, and a spent nonce's hash tells nothing. Only ADMIN and
-- SYSTEM delete (the job runs as SYSTEM).

CREATE TABLE acme_spent_nonces (
    nonce_hash bytea       PRIMARY KEY,
    expires_at timestamptz NOT NULL,
    CONSTRAINT acme_spent_nonces_hash_length CHECK (octet_length(nonce_hash) = 32)
);
COMMENT ON TABLE acme_spent_nonces IS
    'ACME nonces already used (SHA-256 of the nonce), kept until the nonce would have expired.';

-- Serves: the acme-nonces job's DELETE ... WHERE expires_at < now.
CREATE INDEX acme_spent_nonces_expires_idx ON acme_spent_nonces (expires_at);

ALTER TABLE acme_spent_nonces ENABLE ROW LEVEL SECURITY;
CREATE POLICY acme_spent_nonces_spend ON acme_spent_nonces FOR INSERT TO keyinfra_app
    WITH CHECK (true);
CREATE POLICY acme_spent_nonces_read ON acme_spent_nonces FOR SELECT TO keyinfra_app
    USING (true);
CREATE POLICY acme_spent_nonces_purge ON acme_spent_nonces FOR DELETE TO keyinfra_app
    USING ((SELECT keyinfra_sees_all()));
GRANT SELECT, INSERT, DELETE ON acme_spent_nonces TO keyinfra_app;
