-- 0008 authentication support.
--
-- Access tokens are stateless JWTs (no session table). A deleted or disabled user, a user
-- whose role changed and a user whose password changed lose access immediately, at no extra
-- round trip: every request's transaction is opened by one simple-protocol message
--   SELECT keyinfra_check_token(...); BEGIN; SELECT set_config(...), set_config(...)
-- keyinfra_check_token() compares the token's claims with the users row and raises SQLSTATE
-- KI401 (answered with 401) for a stale token. It runs before BEGIN on purpose: a failure
-- then skips the rest of the message and leaves the connection idle, not in an aborted
-- transaction.
--
-- Password changes are compared at one-second precision, the precision of the JWT `iat`
-- claim: a token issued in the same second as, but before, a password change stays valid
-- until it expires (at most one token lifetime; documented in ARCHITECTURE.md).

CREATE FUNCTION keyinfra_check_token(user_id uuid, claimed_role user_role, issued_at timestamptz)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    account users%ROWTYPE;
BEGIN
    SELECT * INTO account FROM users WHERE id = user_id;
    IF NOT FOUND OR account.disabled OR account.role <> claimed_role
       OR date_trunc('second', account.password_changed_at) > issued_at THEN
        RAISE EXCEPTION 'the access token is no longer valid' USING ERRCODE = 'KI401';
    END IF;
END
$$;

-- Login happens before there is an identity, and row-level security hides every user from
-- an anonymous transaction; this returns exactly what a login needs for one name.
CREATE FUNCTION keyinfra_login_lookup(login_name text)
    RETURNS TABLE (id uuid, username text, password_hash text, role user_role, disabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT u.id, u.username, u.password_hash, u.role, u.disabled
    FROM users AS u
    WHERE lower(u.username) = lower(login_name)
$$;

-- True when no user exists yet: `serve` then creates the first administrator.
CREATE FUNCTION keyinfra_users_empty() RETURNS boolean
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$ SELECT NOT EXISTS (SELECT 1 FROM users) $$;

REVOKE ALL ON FUNCTION keyinfra_check_token(uuid, user_role, timestamptz) FROM PUBLIC;
REVOKE ALL ON FUNCTION keyinfra_login_lookup(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION keyinfra_users_empty() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_check_token(uuid, user_role, timestamptz) TO keyinfra_app;
GRANT EXECUTE ON FUNCTION keyinfra_login_lookup(text) TO keyinfra_app;
GRANT EXECUTE ON FUNCTION keyinfra_users_empty() TO keyinfra_app;

-- Serves: user lists in keyset order (created_at, id).
CREATE INDEX users_created_idx ON users (created_at, id);
