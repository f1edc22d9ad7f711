-- 0009 what the certificate authority needs beyond the base schema.
--
-- * CRLs are derived data: every publication inserts a row, and only the newest few per CA
--   are worth keeping (a CRL with a million entries is tens of megabytes). The publisher
--   (SYSTEM) prunes older ones, so it may DELETE. "The newest CRL of a CA" is served by
--   the unique index on (ca_id, crl_number).

CREATE POLICY crls_prune ON crls FOR DELETE TO keyinfra_app USING ((SELECT keyinfra_sees_all()));
GRANT DELETE ON crls TO keyinfra_app;

