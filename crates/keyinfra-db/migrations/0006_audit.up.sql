-- 0006 the audit log: append-only.
--
-- * The application role may INSERT and SELECT only; a trigger also refuses UPDATE, DELETE
--   and TRUNCATE for every role, so history cannot be rewritten by accident or by an RI
--   action.
-- * actor_id has no foreign key on purpose: audit rows outlive the users they name, and an
--   ON DELETE SET NULL would itself rewrite history. actor_name keeps the name at the time.
--   A NULL actor_id is the system, or an anonymous caller (a failed login names the
--   attempted username in actor_name).

CREATE TABLE audit_events (
    id          uuid        PRIMARY KEY DEFAULT gen_random_uuid(),
    occurred_at timestamptz NOT NULL DEFAULT now(),
    actor_id    uuid,
    actor_name  text,
    action      text        NOT NULL,
    target_type text,
    target_id   uuid,
    details     jsonb       NOT NULL DEFAULT '{}'::jsonb,

    CONSTRAINT audit_events_action_valid CHECK (action ~ '^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)+$'),
    CONSTRAINT audit_events_details_object CHECK (jsonb_typeof(details) = 'object'),
    CONSTRAINT audit_events_target_consistent CHECK (target_id IS NULL OR target_type IS NOT NULL),
    CONSTRAINT audit_events_actor_name_length CHECK (actor_name IS NULL OR char_length(actor_name) <= 256)
);

-- Serves: the audit page, newest first, and time-window filters.
CREATE INDEX audit_events_occurred_at_idx ON audit_events (occurred_at DESC, id DESC);
-- Serves: filter by actor, newest first.
CREATE INDEX audit_events_actor_idx ON audit_events (actor_id, occurred_at DESC) WHERE actor_id IS NOT NULL;
-- Serves: filter by action, newest first.
CREATE INDEX audit_events_action_idx ON audit_events (action, occurred_at DESC);
-- Serves: the history of one object (a certificate's or user's events).
CREATE INDEX audit_events_target_idx ON audit_events (target_id, occurred_at DESC) WHERE target_id IS NOT NULL;

CREATE FUNCTION audit_events_refuse_change() RETURNS trigger
    LANGUAGE plpgsql
AS $$
BEGIN
    RAISE EXCEPTION 'the audit log is append-only'
        USING ERRCODE = 'insufficient_privilege', CONSTRAINT = 'audit_events_append_only';
END
$$;
CREATE TRIGGER audit_events_no_update_or_delete BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE FUNCTION audit_events_refuse_change();
CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE FUNCTION audit_events_refuse_change();

-- Admins see everything; a user sees the events they caused. Anyone may append an event in
-- their own name, or an anonymous one (failed logins happen before there is an identity).
ALTER TABLE audit_events ENABLE ROW LEVEL SECURITY;
CREATE POLICY audit_events_read ON audit_events FOR SELECT TO keyinfra_app
    USING (actor_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));
CREATE POLICY audit_events_append ON audit_events FOR INSERT TO keyinfra_app
    WITH CHECK (actor_id IS NULL OR actor_id = (SELECT keyinfra_current_user_id()) OR (SELECT keyinfra_sees_all()));

GRANT SELECT, INSERT ON audit_events TO keyinfra_app;
