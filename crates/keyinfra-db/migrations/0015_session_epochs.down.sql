-- Back to 0008's check by issue time (whole seconds) and password change.
DROP FUNCTION keyinfra_check_token(uuid, user_role, timestamptz);
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
REVOKE ALL ON FUNCTION keyinfra_check_token(uuid, user_role, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION keyinfra_check_token(uuid, user_role, timestamptz) TO keyinfra_app;

DROP TRIGGER users_advance_session_epoch ON users;
DROP FUNCTION users_advance_session_epoch();
REVOKE SELECT (session_epoch) ON users FROM keyinfra_app;
ALTER TABLE users DROP COLUMN session_epoch;
