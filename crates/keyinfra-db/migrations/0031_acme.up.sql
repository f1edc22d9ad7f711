-- 0031 ACME state (issue 21, RFC 8555): external account binding keys, accounts, orders,
-- authorizations and challenges. Nonces have their own table (0028).
--
-- Who owns what. Every row names the KeyInfra user it belongs to (owner_id), copied down
-- from the account so that row-level security needs no join: a USER sees their own ACME
-- rows, ADMIN and SYSTEM all, no identity none. An ACME request is nobody until its JWS
-- verifies, so the two look-ups that come before that (the account a `kid` names, the
-- binding key an EAB names) are SECURITY DEFINER functions that return only what the
-- verification needs (a public key, an owner); after it, the request runs as its owner.
--
-- External account binding keys hold no secret. The HMAC key is derived from the server
-- secret the replicas share and the key's id (keyinfra-core's acme::eab), so a copy of the
-- database does not let anyone bind an account, and there is nothing to seal or rotate. A
-- key is used once: the account it bound is recorded in the same transaction that creates
-- the account.
--
-- Authorizations belong to one order (RFC 8555 lets a server reuse them across orders; we
-- do not, so an order's state is a function of its own rows only).

CREATE TYPE acme_account_status AS ENUM ('valid', 'deactivated', 'revoked');
CREATE TYPE acme_order_status AS ENUM ('pending', 'ready', 'processing', 'valid', 'invalid');
CREATE TYPE acme_authorization_status AS ENUM
    ('pending', 'valid', 'invalid', 'deactivated', 'expired', 'revoked');
CREATE TYPE acme_challenge_status AS ENUM ('pending', 'processing', 'valid', 'invalid');

CREATE TABLE acme_eab_keys (
    -- The key id (`kid`) a client sends is this UUID's hyphenated text.
    id          uuid        PRIMARY KEY DEFAULT keyinfra_uuid_v7(),
    -- CASCADE: a binding key is its owner's credential.
    owner_id    uuid        NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_by  uuid        REFERENCES users (id) ON DELETE SET NULL,
    created_at  timestamptz NOT NULL,
    expires_at  timestamptz NOT NULL,
    used_at     timestamptz,
    -- The account it bound. Not a foreign key: acme_accounts.eab_key_id references this
    -- table, and `backup` restores tables in foreign-key order, which a cycle would break.
    -- An account goes only with its owner (CASCADE), and its binding keys go with it.
    account_id  uuid,
    CONSTRAINT acme_eab_keys_expiry_valid
        CHECK (expires_at > created_at AND expires_at <= created_at + interval '30 days'),
    CONSTRAINT acme_eab_keys_account_when_used CHECK ((used_at IS NULL) = (account_id IS NULL))
);
COMMENT ON TABLE acme_eab_keys IS
    'ACME external account binding keys (RFC 8555 7.3.4); the HMAC key is derived, never stored.';
-- Serves: a user's keys newest first, the live count under the create lock, ON DELETE CASCADE.
CREATE INDEX acme_eab_keys_owner_idx ON acme_eab_keys (owner_id, created_at DESC);
CREATE INDEX acme_eab_keys_created_by_idx ON acme_eab_keys (created_by) WHERE created_by IS NOT NULL;

CREATE TABLE acme_accounts (
    -- The account URL is /acme/account/{id}; clients send it as the JWS `kid`.
    id              uuid                NOT NULL PRIMARY KEY DEFAULT keyinfra_uuid_v7(),
    owner_id        uuid                NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The public key as the client sent it (RFC 7517 JSON, public members only) and its
    -- RFC 7638 SHA-256 thumbprint. One account per key, across all owners (RFC 8555 7.3.1:
    -- newAccount with a known key answers with that account).
    jwk             jsonb               NOT NULL,
    jwk_thumbprint  bytea               NOT NULL,
    status          acme_account_status NOT NULL DEFAULT 'valid',
    contact         text[]              NOT NULL DEFAULT '{}',
    terms_agreed    boolean             NOT NULL DEFAULT false,
    -- NULL when external account binding is not required (KEYINFRA_ACME_EAB_REQUIRED=false).
    eab_key_id      uuid                REFERENCES acme_eab_keys (id) ON DELETE SET NULL,
    created_at      timestamptz         NOT NULL,
    deactivated_at  timestamptz,
    CONSTRAINT acme_accounts_thumbprint_key UNIQUE (jwk_thumbprint),
    CONSTRAINT acme_accounts_thumbprint_length CHECK (octet_length(jwk_thumbprint) = 32),
    CONSTRAINT acme_accounts_jwk_object CHECK (jsonb_typeof(jwk) = 'object'),
    CONSTRAINT acme_accounts_contact_bounded CHECK (cardinality(contact) <= 8),
    CONSTRAINT acme_accounts_deactivated_when
        CHECK ((status = 'valid') = (deactivated_at IS NULL))
);
COMMENT ON TABLE acme_accounts IS 'ACME accounts, each owned by a KeyInfra user.';
-- Serves: a user's accounts newest first (API, UI) and ON DELETE CASCADE of owner_id.
CREATE INDEX acme_accounts_owner_idx ON acme_accounts (owner_id, created_at DESC);
CREATE INDEX acme_accounts_eab_key_idx ON acme_accounts (eab_key_id) WHERE eab_key_id IS NOT NULL;

CREATE TABLE acme_orders (
    id              uuid              PRIMARY KEY DEFAULT keyinfra_uuid_v7(),
    account_id      uuid              NOT NULL REFERENCES acme_accounts (id) ON DELETE CASCADE,
    owner_id        uuid              NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    -- The issuing CA the order's certificate comes from (the default when it was made).
    ca_id           uuid              NOT NULL REFERENCES certificate_authorities (id),
    status          acme_order_status NOT NULL DEFAULT 'pending',
    -- [{"type": "dns"|"ip", "value": "..."}], canonical (keyinfra-pki's acme::Identifier).
    identifiers     jsonb             NOT NULL,
    not_before      timestamptz,
    not_after       timestamptz,
    expires_at      timestamptz       NOT NULL,
    -- An RFC 8555 problem document when the order became invalid.
    error           jsonb,
    -- RFC 9773: the ARI certID of the certificate this order renews.
    replaces        text,
    certificate_id  uuid              REFERENCES certificate_serials (certificate_id) ON DELETE SET NULL,
    created_at      timestamptz       NOT NULL,
    CONSTRAINT acme_orders_identifiers_valid
        CHECK (jsonb_typeof(identifiers) = 'array'
               AND jsonb_array_length(identifiers) BETWEEN 1 AND 100),
    CONSTRAINT acme_orders_replaces_length CHECK (replaces IS NULL OR length(replaces) <= 512),
    CONSTRAINT acme_orders_certificate_when_valid
        CHECK (certificate_id IS NULL OR status = 'valid')
);
COMMENT ON TABLE acme_orders IS 'ACME orders (RFC 8555 7.1.3).';
-- Serves: an account's orders newest first, and the new-order rate limit (orders of an
-- account since an instant).
CREATE INDEX acme_orders_account_idx ON acme_orders (account_id, created_at DESC);
CREATE INDEX acme_orders_owner_idx ON acme_orders (owner_id);
CREATE INDEX acme_orders_certificate_idx ON acme_orders (certificate_id) WHERE certificate_id IS NOT NULL;
CREATE INDEX acme_orders_ca_idx ON acme_orders (ca_id);

CREATE TABLE acme_authorizations (
    id               uuid                      PRIMARY KEY DEFAULT keyinfra_uuid_v7(),
    order_id         uuid                      NOT NULL REFERENCES acme_orders (id) ON DELETE CASCADE,
    account_id       uuid                      NOT NULL,
    owner_id         uuid                      NOT NULL,
    identifier_type  text                      NOT NULL,
    -- Without the "*." of a wildcard (RFC 8555 7.1.4), which `wildcard` records.
    identifier_value text                      NOT NULL,
    wildcard         boolean                   NOT NULL DEFAULT false,
    status           acme_authorization_status NOT NULL DEFAULT 'pending',
    expires_at       timestamptz               NOT NULL,
    CONSTRAINT acme_authorizations_type_valid CHECK (identifier_type IN ('dns', 'ip')),
    CONSTRAINT acme_authorizations_value_length CHECK (length(identifier_value) BETWEEN 1 AND 253),
    CONSTRAINT acme_authorizations_wildcard_dns CHECK (NOT wildcard OR identifier_type = 'dns')
);
COMMENT ON TABLE acme_authorizations IS 'ACME authorizations, one per identifier of an order.';
CREATE INDEX acme_authorizations_order_idx ON acme_authorizations (order_id);

CREATE TABLE acme_challenges (
    id               uuid                  PRIMARY KEY DEFAULT keyinfra_uuid_v7(),
    authorization_id uuid                  NOT NULL REFERENCES acme_authorizations (id) ON DELETE CASCADE,
    account_id       uuid                  NOT NULL,
    owner_id         uuid                  NOT NULL,
    type             text                  NOT NULL,
    -- 32 random bytes, base64url without padding (RFC 8555 8.1: at least 128 bits).
    token            text                  NOT NULL,
    status           acme_challenge_status NOT NULL DEFAULT 'pending',
    -- The background validator: attempts made, and when the next may run (also its lease:
    -- a replica that takes a challenge moves this forward, so another skips it).
    attempts         integer               NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz,
    validated_at     timestamptz,
    error            jsonb,
    CONSTRAINT acme_challenges_type_valid CHECK (type IN ('http-01', 'dns-01', 'tls-alpn-01')),
    CONSTRAINT acme_challenges_token_valid CHECK (length(token) = 43),
    CONSTRAINT acme_challenges_attempts_valid CHECK (attempts >= 0)
);
COMMENT ON TABLE acme_challenges IS 'ACME challenges, validated in the background.';
CREATE INDEX acme_challenges_authorization_idx ON acme_challenges (authorization_id);
-- Serves: the validator's queue (challenges due for an attempt, oldest first).
CREATE INDEX acme_challenges_due_idx ON acme_challenges (next_attempt_at)
    WHERE status = 'processing';
-- Serves: the failed-validation rate limit (an account's invalid challenges since an instant).
CREATE INDEX acme_challenges_failed_idx ON acme_challenges (account_id, validated_at)
    WHERE status = 'invalid';

-- Row-level security, the same rule on every table: the owner, or ADMIN/SYSTEM.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['acme_eab_keys', 'acme_accounts', 'acme_orders',
                             'acme_authorizations', 'acme_challenges'] LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format(
            'CREATE POLICY %I ON %I TO keyinfra_app
                 USING (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()))
                 WITH CHECK (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()))',
            t || '_owner_or_admin', t);
    END LOOP;
END
$$;
-- No DELETE: ACME rows are the record of what was bound, ordered and validated; they go
-- with their owner (CASCADE).
GRANT SELECT, INSERT, UPDATE ON acme_eab_keys, acme_accounts, acme_orders,
    acme_authorizations, acme_challenges TO keyinfra_app;

-- What a JWS with `kid` needs before it is verified: the account's key, owner and status.
-- A public key is no secret; the owner is returned only so that the verified request can
-- then run as that owner.
CREATE FUNCTION keyinfra_acme_account_key(p_account_id uuid)
    RETURNS TABLE (owner_id uuid, jwk jsonb, status acme_account_status)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT a.owner_id, a.jwk, a.status FROM acme_accounts AS a WHERE a.id = p_account_id;
END
$$;
REVOKE ALL ON FUNCTION keyinfra_acme_account_key(uuid) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_acme_account_key(uuid) TO keyinfra_app;

-- newAccount with a key that already has an account answers with that account.
CREATE FUNCTION keyinfra_acme_account_by_thumbprint(p_thumbprint bytea)
    RETURNS TABLE (id uuid, owner_id uuid, status acme_account_status)
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    RETURN QUERY
    SELECT a.id, a.owner_id, a.status FROM acme_accounts AS a
    WHERE a.jwk_thumbprint = p_thumbprint;
END
$$;
REVOKE ALL ON FUNCTION keyinfra_acme_account_by_thumbprint(bytea) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_acme_account_by_thumbprint(bytea) TO keyinfra_app;

-- What an external account binding needs before its MAC is checked: the owner of an
-- unused, unexpired key whose owner is enabled. It marks nothing: the account's creation
-- uses the key up, as that owner, in one transaction.
CREATE FUNCTION keyinfra_acme_eab_owner(p_key_id uuid, p_now timestamptz)
    RETURNS uuid
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    RETURN (SELECT k.owner_id FROM acme_eab_keys AS k JOIN users AS u ON u.id = k.owner_id
            WHERE k.id = p_key_id AND k.used_at IS NULL AND k.expires_at > p_now
              AND NOT u.disabled);
END
$$;
REVOKE ALL ON FUNCTION keyinfra_acme_eab_owner(uuid, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_acme_eab_owner(uuid, timestamptz) TO keyinfra_app;
