DROP TRIGGER certificate_authorities_short_name ON certificate_authorities;
DROP FUNCTION keyinfra_ca_short_name_default();
ALTER TABLE certificate_authorities DROP COLUMN short_name;
