-- 0014 defence in depth in SQL: row-level security must hold against SQL run as
-- keyinfra_app by someone who sets the identity settings themselves.
--
-- The identity (keyinfra.user_id, keyinfra.user_role) is an ordinary setting: anyone who can
-- run SQL as keyinfra_app can call set_config and claim any identity, ADMIN and SYSTEM
-- included. Row-level security therefore cannot tell the server from such a caller; what
-- the database can and does guarantee is that keyinfra_app, whatever identity it claims,
-- gets no power beyond its grants and policies. This migration closes the four places where
-- it had more.
--
-- 1. Maintenance functions are the owner's only. ensure_certificate_partitions,
--    drop_expired_certificate_partitions, delete_orphaned_private_keys and
--    refresh_certificate_stats are SECURITY DEFINER and bypass row-level security: through
--    them keyinfra_app could drop every certificate partition (retention 0, as_of far in the
--    future), which no identity can do with its own grants (keyinfra_app has no DELETE on
--    certificates). Checking a SYSTEM identity inside them would stop nobody: SYSTEM is a
--    set_config value too. So keyinfra_app loses EXECUTE on all four. The jobs and `serve`'s
--    start run them on a connection of the DATABASE_URL's own login role, without
--    SET ROLE keyinfra_app (keyinfra_db::Database::maintenance): the owner in the simplest
--    setup, or a login role the operator granted EXECUTE (README, "Using an external
--    PostgreSQL"). What remains: a login role that may run them can be reached from a
--    pooled connection with RESET ROLE; to keep them away from keyinfra_app entirely, grant
--    them to no server role and run the two jobs from cron as the owner.
--
-- 2. certificate_serials gets row-level security like certificates: a USER sees the rows of
--    their own certificates, ADMIN and SYSTEM all, no identity nothing (it had no RLS, so an
--    anonymous transaction read every certificate's id, CA, serial and expiry). To keep the
--    policy a comparison of columns with the two settings, with no per-row subquery, the
--    registry gets owner_id, copied from the certificate by the statement trigger that
--    writes the registry (one more column in the same INSERT: issuance, group commit
--    included, does no extra work per row) and kept equal to it by the trigger that already
--    makes revocations follow a reassignment (and the ON DELETE SET NULL of a deleted
--    user, which is an UPDATE of certificates). owner_id has no foreign key of its own: it
--    mirrors certificates.owner_id, whose foreign key does the work, and a second one would
--    need an index the issuance path would pay for. Only the owner writes the registry, so
--    keyinfra_app gets a SELECT policy only. Foreign keys that point at
--    the registry (revocations, alerts, renewals) are checked by PostgreSQL without
--    row-level security, and the trigger and the retention function run as the owner, so
--    none of them changes.
--
-- 3. Password hashes leave the database one at a time. The login needs the stored hash
--    (the pepper and Argon2id live in the application), so keyinfra_login_lookup still
--    returns it, but:
--    - keyinfra_app may no longer SELECT users.password_hash: its SELECT on users becomes a
--      grant of every other column. A forged ADMIN identity used to read every hash with
--      one SELECT. (A column added to users later must be granted here too.)
--    - the hash comes only from keyinfra_login_lookup, for a transaction without identity
--      (login is anonymous), and from keyinfra_own_password_hash, for the transaction's own
--      user (the password change checks the current password);
--    - each of the two hands out at most one hash per transaction. The mark is a
--      transaction-scoped advisory lock on (this backend's pid) that no statement can
--      release before the transaction ends, so unlike a setting it cannot be forged away;
--      the key includes the pid so that no two sessions ever wait for each other.
--    A caller who can run transactions as keyinfra_app can still collect one hash per
--    transaction for names or ids they know. The hashes are HMAC-SHA256 under the pepper
--    before Argon2id, and the pepper is never in the database, so they cannot be attacked
--    offline without it. Keeping the hash inside the database altogether (the application
--    sends the Argon2id output computed with the stored salt, the database compares)
--    changes the login in keyinfra-core and is left for later.
--
-- 4. A superuser DATABASE_URL: `SET ROLE keyinfra_app` binds every request, but RESET ROLE
--    (or set_config('role', ...)) returns a session to its login role, so a superuser or
--    BYPASSRLS login role, or the tables' owner, undoes row-level security for whoever runs
--    SQL on that connection. Nothing in SQL can forbid RESET ROLE; `serve` logs a warning
--    for a superuser or BYPASSRLS login role, and the README documents a NOSUPERUSER login
--    role that owns nothing as the production setup.

-- 1. Maintenance: the owner only.
REVOKE EXECUTE ON FUNCTION ensure_certificate_partitions(integer, timestamptz) FROM keyinfra_app;
REVOKE EXECUTE ON FUNCTION drop_expired_certificate_partitions(interval, timestamptz, integer) FROM keyinfra_app;
REVOKE EXECUTE ON FUNCTION delete_orphaned_private_keys(integer) FROM keyinfra_app;
REVOKE EXECUTE ON FUNCTION refresh_certificate_stats() FROM keyinfra_app;

-- 2. The serial registry under row-level security.
ALTER TABLE certificate_serials ADD COLUMN owner_id uuid;
COMMENT ON COLUMN certificate_serials.owner_id IS
    'The certificate''s owner_id, kept equal to it by triggers; what row-level security reads.';
UPDATE certificate_serials AS s SET owner_id = c.owner_id
FROM certificates AS c
WHERE c.id = s.certificate_id AND c.not_after = s.not_after AND c.owner_id IS NOT NULL;

CREATE OR REPLACE FUNCTION certificates_register_serials() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    INSERT INTO certificate_serials (certificate_id, ca_id, serial_number, not_after, owner_id)
    SELECT id, ca_id, serial_number, not_after, owner_id FROM inserted;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION certificates_follow_owner() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE certificate_serials SET owner_id = NEW.owner_id WHERE certificate_id = NEW.id;
    UPDATE revoked_certificates SET owner_id = NEW.owner_id WHERE certificate_id = NEW.id;
    RETURN NULL;
END
$$;

ALTER TABLE certificate_serials ENABLE ROW LEVEL SECURITY;
CREATE POLICY certificate_serials_owner_or_admin ON certificate_serials FOR SELECT TO keyinfra_app
    USING (owner_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));

-- 3. Password hashes: no column grant, one per transaction, through two functions.
REVOKE SELECT ON users FROM keyinfra_app;
GRANT SELECT (id, username, role, disabled, created_at, updated_at, password_changed_at, email)
    ON users TO keyinfra_app;

-- Refuses a second password hash in the same transaction (see 3. above). The advisory lock
-- is held until the transaction ends and cannot be released earlier; pg_locks tells whether
-- this backend already holds it (advisory locks are re-entrant, so trying again would not).
CREATE FUNCTION keyinfra_claim_password_read() RETURNS void
    LANGUAGE plpgsql VOLATILE SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    -- A constant of KeyInfra's own, the lock's first key; the second is the backend's pid.
    space constant integer := 1263025474;
BEGIN
    IF EXISTS (SELECT 1 FROM pg_locks AS l
               WHERE l.locktype = 'advisory' AND l.pid = pg_backend_pid()
                 AND l.classid = space::oid AND l.objid = pg_backend_pid()::oid
                 AND l.objsubid = 2) THEN
        RAISE EXCEPTION 'one password hash per transaction'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM pg_advisory_xact_lock(space, pg_backend_pid());
END
$$;
REVOKE ALL ON FUNCTION keyinfra_claim_password_read() FROM PUBLIC;

CREATE OR REPLACE FUNCTION keyinfra_login_lookup(login_name text)
    RETURNS TABLE (id uuid, username text, password_hash text, role user_role, disabled boolean)
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    IF keyinfra_current_user_id() IS NOT NULL
       OR coalesce(current_setting('keyinfra.user_role', true), '') <> '' THEN
        RAISE EXCEPTION 'a login lookup runs only in a transaction without an identity'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM keyinfra_claim_password_read();
    RETURN QUERY
        SELECT u.id, u.username, u.password_hash, u.role, u.disabled
        FROM users AS u
        WHERE lower(u.username) = lower(login_name);
END
$$;

-- The transaction's own user's hash, for checking the current password before a change.
CREATE FUNCTION keyinfra_own_password_hash() RETURNS text
    LANGUAGE plpgsql VOLATILE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    me uuid := keyinfra_current_user_id();
BEGIN
    IF me IS NULL THEN
        RAISE EXCEPTION 'no user identity' USING ERRCODE = 'insufficient_privilege';
    END IF;
    PERFORM keyinfra_claim_password_read();
    RETURN (SELECT u.password_hash FROM users AS u WHERE u.id = me);
END
$$;
REVOKE ALL ON FUNCTION keyinfra_own_password_hash() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_own_password_hash() TO keyinfra_app;
