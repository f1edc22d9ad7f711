DROP FUNCTION keyinfra_touch_updated_at();
DROP FUNCTION keyinfra_schema_version();
DROP FUNCTION keyinfra_sees_all();
DROP FUNCTION keyinfra_current_user_id();
REVOKE USAGE ON SCHEMA public FROM keyinfra_app;
-- keyinfra_app is cluster-wide and may serve other databases: it is kept (see the up migration).
DROP EXTENSION IF EXISTS pgcrypto;
