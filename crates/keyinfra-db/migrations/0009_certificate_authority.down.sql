REVOKE DELETE ON crls FROM keyinfra_app;
DROP POLICY crls_prune ON crls;
