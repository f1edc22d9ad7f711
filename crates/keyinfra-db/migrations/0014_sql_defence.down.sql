-- Reverts 0014: password hashes readable again, the registry without row-level security,
-- the maintenance functions callable by keyinfra_app.

DROP FUNCTION keyinfra_own_password_hash();

CREATE OR REPLACE FUNCTION keyinfra_login_lookup(login_name text)
    RETURNS TABLE (id uuid, username text, password_hash text, role user_role, disabled boolean)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT u.id, u.username, u.password_hash, u.role, u.disabled
    FROM users AS u
    WHERE lower(u.username) = lower(login_name)
$$;

DROP FUNCTION keyinfra_claim_password_read();

REVOKE SELECT (id, username, role, disabled, created_at, updated_at, password_changed_at, email)
    ON users FROM keyinfra_app;
GRANT SELECT ON users TO keyinfra_app;

DROP POLICY certificate_serials_owner_or_admin ON certificate_serials;
ALTER TABLE certificate_serials DISABLE ROW LEVEL SECURITY;

CREATE OR REPLACE FUNCTION certificates_follow_owner() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    UPDATE revoked_certificates SET owner_id = NEW.owner_id WHERE certificate_id = NEW.id;
    RETURN NULL;
END
$$;

CREATE OR REPLACE FUNCTION certificates_register_serials() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    INSERT INTO certificate_serials (certificate_id, ca_id, serial_number, not_after)
    SELECT id, ca_id, serial_number, not_after FROM inserted;
    RETURN NULL;
END
$$;

ALTER TABLE certificate_serials DROP COLUMN owner_id;

GRANT EXECUTE ON FUNCTION refresh_certificate_stats() TO keyinfra_app;
GRANT EXECUTE ON FUNCTION delete_orphaned_private_keys(integer) TO keyinfra_app;
GRANT EXECUTE ON FUNCTION drop_expired_certificate_partitions(interval, timestamptz, integer) TO keyinfra_app;
GRANT EXECUTE ON FUNCTION ensure_certificate_partitions(integer, timestamptz) TO keyinfra_app;
