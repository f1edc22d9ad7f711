-- ACME's state goes with its tables: accounts, their orders and every binding key. The
-- certificates ACME issued stay (channel 'acme'); they were never ACME's rows.
DROP FUNCTION keyinfra_acme_eab_owner(uuid, timestamptz);
DROP FUNCTION keyinfra_acme_account_by_thumbprint(bytea);
DROP FUNCTION keyinfra_acme_account_key(uuid);
DROP TABLE acme_challenges;
DROP TABLE acme_authorizations;
DROP TABLE acme_orders;
DROP TABLE acme_accounts;
DROP TABLE acme_eab_keys;
DROP TYPE acme_challenge_status;
DROP TYPE acme_authorization_status;
DROP TYPE acme_order_status;
DROP TYPE acme_account_status;
