-- Delta CRLs (RFC 5280 5.2.4). A delta lives in `crls` beside the complete CRLs of its CA
-- and takes its number from the same sequence (certificate_authorities.crl_number), as RFC
-- 5280 5.2.3 requires of complete and delta CRLs of one scope.
--   base_crl_number NULL      a complete CRL
--   base_crl_number N         a delta CRL over the complete CRL numbered N
ALTER TABLE crls ADD COLUMN base_crl_number bigint;
ALTER TABLE crls ADD CONSTRAINT crls_delta_base_precedes
    CHECK (base_crl_number IS NULL OR (base_crl_number >= 1 AND base_crl_number < crl_number));
-- "The newest complete (or delta) CRL of a CA" reads the unique (ca_id, crl_number) index
-- backwards and skips the other kind: at most a few rows per CA are kept.
