-- Issuance throughput: the serial registry is written once per statement, not once per row.
--
-- Group commit (keyinfra_core::group_commit) records many first issues with one multi-row
-- INSERT. The row-level BEFORE trigger of 0004 then ran a SECURITY DEFINER plpgsql function,
-- with its own search_path, for every certificate: about a tenth of all CPU while issuing
-- (docs/benchmarks.md). An AFTER ... FOR EACH STATEMENT trigger with a transition table
-- writes the same registry rows with one INSERT per statement.
--
-- What stays the same:
-- - every certificate inserted through `certificates` is registered before its statement
--   ends, and a serial this CA already used fails that statement with unique_violation on
--   certificate_serials_ca_serial_key (answered as a serial collision, which is retried);
-- - the application role still cannot write the registry itself.
-- What differs: the trigger sits on the partitioned table only. Rows inserted straight into
-- a partition would not be registered; only the owner can do that (keyinfra_app has no
-- privilege on any partition), and the owner is trusted with the schema anyway.

DROP TRIGGER certificates_register_serial ON certificates;
DROP FUNCTION certificates_register_serial();

CREATE FUNCTION certificates_register_serials() RETURNS trigger
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    INSERT INTO certificate_serials (certificate_id, ca_id, serial_number, not_after)
    SELECT id, ca_id, serial_number, not_after FROM inserted;
    RETURN NULL;
END
$$;
REVOKE ALL ON FUNCTION certificates_register_serials() FROM PUBLIC;

CREATE TRIGGER certificates_register_serials AFTER INSERT ON certificates
    REFERENCING NEW TABLE AS inserted
    FOR EACH STATEMENT EXECUTE FUNCTION certificates_register_serials();

COMMENT ON TABLE certificate_serials IS
    'One row per certificate, written by a statement trigger on certificates: enforces per-CA serial uniqueness across all partitions.';
