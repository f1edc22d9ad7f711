DROP TABLE users;
DROP FUNCTION users_guard_privileged_columns();
DROP TYPE user_role;
