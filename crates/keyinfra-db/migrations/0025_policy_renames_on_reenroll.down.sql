ALTER TABLE issuance_policies DROP COLUMN renewal_name_changes;
