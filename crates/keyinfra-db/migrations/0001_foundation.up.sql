-- 0001 foundation: extensions, the application role, and the row-level-security identity.
--
-- Decisions recorded here (see also ARCHITECTURE.md, "Database"):
-- * pgcrypto provides digest(), used by CHECK constraints that make the database verify
--   every stored SHA-256 fingerprint, and gen_random_bytes() for synthetic benchmark data.
--   UUIDs come from gen_random_uuid() (core since PostgreSQL 13).
-- * The server never runs requests as the role that owns the tables. Every pooled
--   connection does `SET ROLE keyinfra_app` right after connecting, so row-level security
--   applies even when DATABASE_URL names a superuser (a superuser that has SET ROLE to a
--   plain role loses its superuser powers for that session). keyinfra_app is NOLOGIN,
--   NOSUPERUSER, NOBYPASSRLS and owns nothing.
-- * Roles are cluster-wide, so several KeyInfra databases in one cluster share the role;
--   grants and policies are per database. The down migration therefore revokes but does not
--   drop the role.
-- * The identity of a request is passed per transaction:
--     SELECT set_config('keyinfra.user_id', '<uuid>', true),
--            set_config('keyinfra.user_role', 'ADMIN' | 'USER' | 'SYSTEM', true);
--   'SYSTEM' is used by background jobs and sees everything, like an ADMIN.
--   With no identity set, the policies match no row.

CREATE EXTENSION IF NOT EXISTS pgcrypto;

DO $$
BEGIN
    CREATE ROLE keyinfra_app NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
EXCEPTION
    -- Another database of the same cluster created it first (tests migrate in parallel).
    WHEN duplicate_object OR unique_violation THEN NULL;
END
$$;

DO $$
DECLARE
    app pg_roles%ROWTYPE;
BEGIN
    SELECT * INTO app FROM pg_roles WHERE rolname = 'keyinfra_app';
    IF app.rolsuper OR app.rolbypassrls THEN
        RAISE EXCEPTION 'role keyinfra_app must be neither SUPERUSER nor BYPASSRLS, or row-level security would not apply'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    -- A non-superuser migrator (which is then also the server's login role) must be a member
    -- to SET ROLE keyinfra_app. Superusers may SET ROLE to anything.
    IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = current_user)
       AND NOT pg_has_role(current_user, 'keyinfra_app', 'MEMBER') THEN
        EXECUTE format('GRANT keyinfra_app TO %I', current_user);
    END IF;
END
$$;

GRANT USAGE ON SCHEMA public TO keyinfra_app;

-- The identity of the current transaction; NULL when none is set.
CREATE FUNCTION keyinfra_current_user_id() RETURNS uuid
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN NULLIF(current_setting('keyinfra.user_id', true), '')::uuid;

-- True for ADMIN and SYSTEM identities, which see and change every row.
CREATE FUNCTION keyinfra_sees_all() RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN coalesce(current_setting('keyinfra.user_role', true), '') IN ('ADMIN', 'SYSTEM');

COMMENT ON FUNCTION keyinfra_current_user_id() IS
    'The user id set per transaction with set_config(''keyinfra.user_id'', ..., true); NULL if unset.';
COMMENT ON FUNCTION keyinfra_sees_all() IS
    'True when the transaction''s identity is ADMIN or SYSTEM (keyinfra.user_role).';

-- The schema version the server expects is compared with this at /readyz. The application
-- role may not read _sqlx_migrations directly.
CREATE FUNCTION keyinfra_schema_version() RETURNS bigint
    LANGUAGE plpgsql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(max(version), 0) FROM _sqlx_migrations WHERE success);
END
$$;
REVOKE ALL ON FUNCTION keyinfra_schema_version() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_schema_version() TO keyinfra_app;

-- Every table with an updated_at column keeps it current with this trigger.
CREATE FUNCTION keyinfra_touch_updated_at() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    NEW.updated_at := now();
    RETURN NEW;
END
$$;
