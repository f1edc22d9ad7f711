DROP FUNCTION drop_expired_certificate_partitions(interval, timestamptz);
DROP FUNCTION ensure_certificate_partitions(integer, timestamptz);
DROP FUNCTION certificate_by_serial(text, uuid);
DROP FUNCTION certificates_expiring(interval, timestamptz);
-- Dropping the partitioned table drops every partition with it.
DROP TABLE certificates;
DROP FUNCTION certificates_guard_update();
DROP FUNCTION certificates_register_serial();
DROP TABLE certificate_serials;
DROP FUNCTION keyinfra_san_list_is_valid(text[]);
DROP FUNCTION keyinfra_serial_is_canonical(text);
DROP TYPE certificate_status;
