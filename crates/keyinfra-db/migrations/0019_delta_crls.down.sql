DELETE FROM crls WHERE base_crl_number IS NOT NULL;
ALTER TABLE crls DROP CONSTRAINT crls_delta_base_precedes;
ALTER TABLE crls DROP COLUMN base_crl_number;
