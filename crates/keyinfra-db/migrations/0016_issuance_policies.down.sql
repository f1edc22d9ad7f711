-- The table first: its row-level security policy reads users.policy_id.
DROP INDEX users_policy_id_idx;
ALTER TABLE users DROP CONSTRAINT users_policy_id_fkey;
DROP TABLE issuance_policies;
ALTER TABLE users DROP COLUMN policy_id;

CREATE OR REPLACE FUNCTION users_guard_privileged_columns() RETURNS trigger
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
