-- 0015 session epochs: access tokens end exactly when they should.
--
-- Until now keyinfra_check_token compared the token's `iat` (whole seconds) with
-- password_changed_at, and looked at role and disabled as they are now. Three holes:
-- - a token issued in the same second as a password change survived it;
-- - logout only cleared the cookie, and the token went on working as a Bearer token;
-- - disabling a user and enabling them again brought their old tokens back to life.
--
-- Each user now has a session epoch, a timestamp that every event ending sessions moves
-- forward: a password change, a role change, disabling or enabling, and logout. A token
-- carries the epoch it was issued under (read from this row at login, never from a
-- replica's clock) and is valid only while the row holds exactly that value: an equality,
-- not a comparison of clocks or seconds. The check keeps its place in the BEGIN round trip
-- and its signature, so keyinfra_record_issuances (0012) passes the epoch where it passed
-- the issue time and needs no change.
--
-- Only this trigger sets the column: any UPDATE that touches it (logout sets it to
-- anything) or one of the events above moves it to clock_timestamp(), and always forward,
-- so no caller (not even SQL run as keyinfra_app with a forged identity) can set an old
-- epoch back and revive old tokens.

ALTER TABLE users ADD COLUMN session_epoch timestamptz NOT NULL DEFAULT clock_timestamp();
-- Since 0014 keyinfra_app reads users column by column (not password_hash); login reads the
-- epoch to put it in the token.
GRANT SELECT (session_epoch) ON users TO keyinfra_app;

CREATE FUNCTION users_advance_session_epoch() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    IF NEW.session_epoch IS DISTINCT FROM OLD.session_epoch
       OR NEW.role IS DISTINCT FROM OLD.role
       OR NEW.disabled IS DISTINCT FROM OLD.disabled
       OR NEW.password_changed_at IS DISTINCT FROM OLD.password_changed_at THEN
        NEW.session_epoch := greatest(clock_timestamp(),
                                      OLD.session_epoch + interval '1 microsecond');
    END IF;
    RETURN NEW;
END
$$;

CREATE TRIGGER users_advance_session_epoch BEFORE UPDATE ON users
    FOR EACH ROW EXECUTE FUNCTION users_advance_session_epoch();

-- Same name and argument types as 0008's, so callers (and 0012's batch function) keep
-- calling it; the third argument is now the token's session epoch.
DROP FUNCTION keyinfra_check_token(uuid, user_role, timestamptz);
CREATE FUNCTION keyinfra_check_token(user_id uuid, claimed_role user_role, epoch timestamptz)
    RETURNS void
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    account users%ROWTYPE;
BEGIN
    SELECT * INTO account FROM users WHERE id = user_id;
    IF NOT FOUND OR account.disabled OR account.role <> claimed_role
       OR account.session_epoch IS DISTINCT FROM epoch THEN
        RAISE EXCEPTION 'the access token is no longer valid' USING ERRCODE = 'KI401';
    END IF;
END
$$;
REVOKE ALL ON FUNCTION keyinfra_check_token(uuid, user_role, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_check_token(uuid, user_role, timestamptz) TO keyinfra_app;
