DROP INDEX users_created_idx;
DROP FUNCTION keyinfra_users_empty();
DROP FUNCTION keyinfra_login_lookup(text);
DROP FUNCTION keyinfra_check_token(uuid, user_role, timestamptz);
