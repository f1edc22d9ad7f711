DROP TRIGGER certificates_register_serials ON certificates;
DROP FUNCTION certificates_register_serials();

CREATE FUNCTION certificates_register_serial() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    INSERT INTO certificate_serials (certificate_id, ca_id, serial_number, not_after)
    VALUES (NEW.id, NEW.ca_id, NEW.serial_number, NEW.not_after);
    RETURN NEW;
END
$$;
REVOKE ALL ON FUNCTION certificates_register_serial() FROM PUBLIC;

CREATE TRIGGER certificates_register_serial BEFORE INSERT ON certificates
    FOR EACH ROW EXECUTE FUNCTION certificates_register_serial();

COMMENT ON TABLE certificate_serials IS
    'One row per certificate, written by trigger: enforces per-CA serial uniqueness across all partitions of certificates.';
