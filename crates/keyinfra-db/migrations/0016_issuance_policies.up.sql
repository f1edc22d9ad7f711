-- Issuance policies (issue 17): who may get which names, from which CA, with which profile.
-- A policy is data an ADMIN manages; every channel (REST, UI, CLI, --tls auto, and the
-- enrollment protocols to come) goes through the one issuer that reads it.
--
-- The patterns are stored as the administrator wrote them (normalised by the core, which
-- refuses an invalid one before it gets here); the core compiles them, so the database
-- checks only shapes and bounds.
--
-- The `default` policy is not seeded here: a migration's row would make a freshly migrated
-- database non-empty and collide with the restored backup's own row. The core creates it
-- (fixed id below) when the server starts or a policy is first managed, and until then
-- answers with the same built-in values.
CREATE TABLE issuance_policies (
    id                uuid        PRIMARY KEY,
    name              text        NOT NULL,
    description       text        NOT NULL DEFAULT '',
    allowed_dns       text[]      NOT NULL DEFAULT '{}',
    denied_dns        text[]      NOT NULL DEFAULT '{}',
    allowed_ips       text[]      NOT NULL DEFAULT '{}',
    allowed_emails    text[]      NOT NULL DEFAULT '{}',
    allowed_uris      text[]      NOT NULL DEFAULT '{}',
    -- {"allowed_attributes": ["CN", ...], "fixed": {"O": "Example Corp"}}
    subject_rules     jsonb       NOT NULL,
    profiles          text[]      NOT NULL,
    key_algorithms    text[]      NOT NULL,
    min_rsa_bits      integer     NOT NULL DEFAULT 2048,
    max_validity_days integer     NOT NULL,
    -- Active certificates an owner may hold; NULL = the server's KEYINFRA_CERT_QUOTA.
    quota             integer,
    -- CAs that may sign under this policy; empty = any issuing CA.
    ca_ids            uuid[]      NOT NULL DEFAULT '{}',
    created_at        timestamptz NOT NULL DEFAULT now(),
    updated_at        timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT issuance_policies_name_key UNIQUE (name),
    CONSTRAINT issuance_policies_name_valid CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    CONSTRAINT issuance_policies_description_length CHECK (length(description) <= 1000),
    CONSTRAINT issuance_policies_lists_bounded CHECK (
        cardinality(allowed_dns) <= 1000 AND cardinality(denied_dns) <= 1000
        AND cardinality(allowed_ips) <= 1000 AND cardinality(allowed_emails) <= 1000
        AND cardinality(allowed_uris) <= 1000 AND cardinality(profiles) <= 100
        AND cardinality(key_algorithms) <= 20 AND cardinality(ca_ids) <= 100),
    CONSTRAINT issuance_policies_subject_rules_object CHECK (jsonb_typeof(subject_rules) = 'object'),
    CONSTRAINT issuance_policies_min_rsa_bits_valid CHECK (min_rsa_bits IN (2048, 3072, 4096)),
    CONSTRAINT issuance_policies_max_validity_valid CHECK (max_validity_days BETWEEN 1 AND 36500),
    CONSTRAINT issuance_policies_quota_valid CHECK (quota IS NULL OR quota BETWEEN 0 AND 1000000)
);
COMMENT ON TABLE issuance_policies IS
    'Issuance policies: allowed and denied names, IP ranges, subject rules, profiles, key algorithms, validity, quota and CAs. The default policy has id 00000000-0000-7000-8000-000000000001.';

-- Every user has exactly one policy: NULL is the default policy (which may not exist as a
-- row yet, see above). RESTRICT: a policy that users hold cannot be deleted.
ALTER TABLE users ADD COLUMN policy_id uuid
    CONSTRAINT users_policy_id_fkey REFERENCES issuance_policies (id) ON DELETE RESTRICT;
-- Serves: "refused while users hold the policy" and the policy page's user count.
CREATE INDEX users_policy_id_idx ON users (policy_id) WHERE policy_id IS NOT NULL;
-- users is granted column by column (migration 0014).
GRANT SELECT (policy_id) ON users TO keyinfra_app;

-- A USER may change their own row (password, e-mail), never their policy.
CREATE OR REPLACE FUNCTION users_guard_privileged_columns() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT keyinfra_sees_all() AND (
        NEW.role IS DISTINCT FROM OLD.role
        OR NEW.disabled IS DISTINCT FROM OLD.disabled
        OR NEW.username IS DISTINCT FROM OLD.username
        OR NEW.id IS DISTINCT FROM OLD.id
        OR NEW.policy_id IS DISTINCT FROM OLD.policy_id
    ) THEN
        RAISE EXCEPTION 'only an administrator may change a user''s role, status, name or policy'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

ALTER TABLE issuance_policies ENABLE ROW LEVEL SECURITY;
-- ADMIN and SYSTEM see every policy; a USER sees only its own (which may be the default),
-- so that it can learn what it may ask for without learning other teams' names.
CREATE POLICY issuance_policies_select ON issuance_policies FOR SELECT TO keyinfra_app
    USING ((SELECT keyinfra_sees_all())
           OR id = coalesce((SELECT u.policy_id FROM users u
                             WHERE u.id = (SELECT keyinfra_current_user_id())),
                            '00000000-0000-7000-8000-000000000001'::uuid));
CREATE POLICY issuance_policies_insert ON issuance_policies FOR INSERT TO keyinfra_app
    WITH CHECK ((SELECT keyinfra_sees_all()));
CREATE POLICY issuance_policies_update ON issuance_policies FOR UPDATE TO keyinfra_app
    USING ((SELECT keyinfra_sees_all())) WITH CHECK ((SELECT keyinfra_sees_all()));
CREATE POLICY issuance_policies_delete ON issuance_policies FOR DELETE TO keyinfra_app
    USING ((SELECT keyinfra_sees_all()));
GRANT SELECT, INSERT, UPDATE, DELETE ON issuance_policies TO keyinfra_app;
