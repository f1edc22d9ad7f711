-- 0003 private keys and certificate authorities.
--
-- Private keys at rest (the design's "AES-256 encrypted, stored as BYTEA with separate salt
-- column" and "key versioning for encryption upgrades"):
-- * ciphertext is the PKCS#8 key sealed with AES-256-GCM (the 16-byte tag appended);
--   nonce is the 12-byte GCM nonce; salt is the 32-byte random HKDF-SHA256 salt that
--   derives this key's data key from the master key (KEK).
-- * kek_version names the master-key version that sealed the row. Several versions can be
--   configured at once; `keyinfra keys rotate` re-seals rows whose version is not the
--   newest (served by private_keys_kek_version_idx).
-- * The database never holds plaintext key material; the master key is never stored here.
-- * A certificate renewed without re-keying points at the same private_keys row.
-- * owner_id is NULL for CA keys, and for keys whose owner was deleted (their certificates
--   were revoked first; the retention job removes keys no certificate refers to).

CREATE TYPE key_algorithm AS ENUM (
    'ecdsa-p256', 'ecdsa-p384', 'ecdsa-p521', 'ed25519', 'rsa-2048', 'rsa-3072', 'rsa-4096'
);
COMMENT ON TYPE key_algorithm IS
    'Key algorithms KeyInfra issues or accepts in CSRs; labels are the API''s names.';

CREATE TABLE private_keys (
    id                     uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    owner_id               uuid          REFERENCES users (id) ON DELETE SET NULL,
    algorithm              key_algorithm NOT NULL,
    public_key_fingerprint bytea         NOT NULL,
    ciphertext             bytea         NOT NULL,
    nonce                  bytea         NOT NULL,
    salt                   bytea         NOT NULL,
    kek_version            integer       NOT NULL,
    created_at             timestamptz   NOT NULL DEFAULT now(),
    resealed_at            timestamptz,

    CONSTRAINT private_keys_fingerprint_sha256 CHECK (octet_length(public_key_fingerprint) = 32),
    -- At least the 16-byte GCM tag plus some key bytes.
    CONSTRAINT private_keys_ciphertext_sealed CHECK (octet_length(ciphertext) > 16),
    CONSTRAINT private_keys_nonce_96_bits CHECK (octet_length(nonce) = 12),
    CONSTRAINT private_keys_salt_256_bits CHECK (octet_length(salt) = 32),
    CONSTRAINT private_keys_kek_version_positive CHECK (kek_version >= 1),
    CONSTRAINT private_keys_resealed_after_created CHECK (resealed_at IS NULL OR resealed_at >= created_at)
);

-- Serves: "is this public key already stored?" (one row per key pair).
CREATE UNIQUE INDEX private_keys_public_key_fingerprint_key ON private_keys (public_key_fingerprint);
-- Serves: `keys rotate`, which walks the rows not sealed under the newest KEK version in batches.
CREATE INDEX private_keys_kek_version_idx ON private_keys (kek_version, id);
-- Serves: the owner's keys, and ON DELETE SET NULL when a user is deleted.
CREATE INDEX private_keys_owner_idx ON private_keys (owner_id) WHERE owner_id IS NOT NULL;

ALTER TABLE private_keys ENABLE ROW LEVEL SECURITY;
CREATE POLICY private_keys_owner_or_admin ON private_keys TO keyinfra_app
    USING (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()))
    WITH CHECK (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));

GRANT SELECT, INSERT, UPDATE ON private_keys TO keyinfra_app;

-- Certificate authorities. A root has no parent. private_key_id is NULL for a CA whose key
-- KeyInfra does not hold (for example an offline root above an imported intermediate).
-- crl_number is the number of the last CRL issued; the application increments it with
-- UPDATE ... RETURNING, whose row lock gives concurrent servers distinct, increasing numbers.
CREATE TABLE certificate_authorities (
    id                 uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    name               text        NOT NULL,
    subject_dn         text        NOT NULL,
    certificate_der    bytea       NOT NULL,
    fingerprint_sha256 bytea       NOT NULL,
    -- RESTRICT: a CA's key is never deleted while the CA exists.
    private_key_id     uuid        REFERENCES private_keys (id) ON DELETE RESTRICT,
    -- RESTRICT: a CA that signed other CAs cannot be deleted.
    parent_ca_id       uuid        REFERENCES certificate_authorities (id) ON DELETE RESTRICT,
    not_before         timestamptz NOT NULL,
    not_after          timestamptz NOT NULL,
    crl_number         bigint      NOT NULL DEFAULT 0,
    created_at         timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT certificate_authorities_name_key UNIQUE (name),
    CONSTRAINT certificate_authorities_name_valid CHECK (
        char_length(name) BETWEEN 1 AND 64 AND name = btrim(name) AND name !~ '[[:cntrl:]]'
    ),
    CONSTRAINT certificate_authorities_subject_nonempty CHECK (btrim(subject_dn) <> ''),
    CONSTRAINT certificate_authorities_der_nonempty CHECK (octet_length(certificate_der) > 0),
    CONSTRAINT certificate_authorities_fingerprint_matches
        CHECK (fingerprint_sha256 = digest(certificate_der, 'sha256')),
    CONSTRAINT certificate_authorities_validity CHECK (not_before < not_after),
    CONSTRAINT certificate_authorities_crl_number_nonnegative CHECK (crl_number >= 0),
    CONSTRAINT certificate_authorities_not_own_parent CHECK (parent_ca_id <> id)
);

-- Serves: the certificate that pins a CA, e.g. on import ("is this CA already here?").
CREATE UNIQUE INDEX certificate_authorities_fingerprint_key ON certificate_authorities (fingerprint_sha256);
-- Serves: ON DELETE RESTRICT checks and listing a CA's subordinates.
CREATE INDEX certificate_authorities_parent_idx ON certificate_authorities (parent_ca_id)
    WHERE parent_ca_id IS NOT NULL;

-- CA certificates are public: any identity (and the anonymous CRL/CA download endpoints)
-- may read them; only ADMIN and SYSTEM may change them.
ALTER TABLE certificate_authorities ENABLE ROW LEVEL SECURITY;
CREATE POLICY certificate_authorities_read ON certificate_authorities FOR SELECT TO keyinfra_app
    USING (true);
CREATE POLICY certificate_authorities_insert ON certificate_authorities FOR INSERT TO keyinfra_app
    WITH CHECK ((SELECT keyinfra_sees_all()));
CREATE POLICY certificate_authorities_update ON certificate_authorities FOR UPDATE TO keyinfra_app
    USING ((SELECT keyinfra_sees_all())) WITH CHECK ((SELECT keyinfra_sees_all()));

GRANT SELECT, INSERT, UPDATE ON certificate_authorities TO keyinfra_app;
