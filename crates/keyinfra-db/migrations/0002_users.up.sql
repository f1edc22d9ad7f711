-- 0002 users and roles.
--
-- * Usernames are unique case-insensitively (unique index on lower(username)), stored as
--   typed. Any printable text is allowed, because a username is data, not syntax; leading
--   and trailing blanks and control characters are refused.
-- * password_hash is a PHC string ($argon2id$v=19$m=...,t=...,p=...$salt$hash). The salt
--   length (16 bytes from a CSPRNG) is fixed by the application and carried inside the PHC
--   string, so it needs no column.
-- * Deleting a user never deletes certificates: certificates.owner_id and the *_by columns
--   are ON DELETE SET NULL, and the application revokes the user's active certificates in
--   the same transaction first, so they stay on the CRL until they expire.

CREATE TYPE user_role AS ENUM ('ADMIN', 'USER');

CREATE TABLE users (
    id                  uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    username            text        NOT NULL,
    password_hash       text        NOT NULL,
    role                user_role   NOT NULL DEFAULT 'USER',
    disabled            boolean     NOT NULL DEFAULT false,
    created_at          timestamptz NOT NULL DEFAULT now(),
    updated_at          timestamptz NOT NULL DEFAULT now(),
    password_changed_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT users_username_valid CHECK (
        char_length(username) BETWEEN 1 AND 128
        AND username = btrim(username)
        AND username !~ '[[:cntrl:]]'
    ),
    CONSTRAINT users_password_hash_phc CHECK (password_hash ~ '^\$[a-z0-9-]{1,32}(\$[A-Za-z0-9+/=,.-]*)+$')
);

-- Serves: login by username, and "username already taken" regardless of case.
CREATE UNIQUE INDEX users_username_lower_key ON users (lower(username));

CREATE TRIGGER users_touch_updated_at BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION keyinfra_touch_updated_at();

-- A USER may change their own password, but only an ADMIN (or SYSTEM) may change a role,
-- the disabled flag or a username. RLS cannot restrict columns, so this trigger is the
-- database's half of that rule.
CREATE FUNCTION users_guard_privileged_columns() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NOT keyinfra_sees_all() AND (
        NEW.role IS DISTINCT FROM OLD.role
        OR NEW.disabled IS DISTINCT FROM OLD.disabled
        OR NEW.username IS DISTINCT FROM OLD.username
        OR NEW.id IS DISTINCT FROM OLD.id
    ) THEN
        RAISE EXCEPTION 'only an administrator may change a user''s role, status or name'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_guard_privileged_columns BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_guard_privileged_columns();

ALTER TABLE users ENABLE ROW LEVEL SECURITY;

-- A USER sees and updates only their own row; ADMIN and SYSTEM see all. Only ADMIN and
-- SYSTEM create or delete users.
CREATE POLICY users_select ON users FOR SELECT TO keyinfra_app
    USING (id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));
CREATE POLICY users_update ON users FOR UPDATE TO keyinfra_app
    USING (id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()))
    WITH CHECK (id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));
CREATE POLICY users_insert ON users FOR INSERT TO keyinfra_app
    WITH CHECK ((SELECT keyinfra_sees_all()));
CREATE POLICY users_delete ON users FOR DELETE TO keyinfra_app
    USING ((SELECT keyinfra_sees_all()));

GRANT SELECT, INSERT, UPDATE, DELETE ON users TO keyinfra_app;
