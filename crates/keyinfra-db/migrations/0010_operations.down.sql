DROP FUNCTION delete_orphaned_private_keys(integer);
DROP FUNCTION drop_expired_certificate_partitions(interval, timestamptz, integer);
CREATE FUNCTION drop_expired_certificate_partitions(retention interval DEFAULT '2 years', as_of timestamptz DEFAULT now())
    RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, certificates_dropped bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    cutoff timestamptz := as_of - retention;
    part record;
BEGIN
    IF retention IS NULL OR retention < interval '0' THEN
        RAISE EXCEPTION 'retention must be a non-negative interval, not %', retention
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('keyinfra.certificate_partitions'));

    FOR part IN
        SELECT p.relname::text AS name, b.bounds[1]::timestamptz AS lo, b.bounds[2]::timestamptz AS hi
        FROM pg_inherits AS i
        JOIN pg_class AS p ON p.oid = i.inhrelid
        CROSS JOIN LATERAL regexp_match(pg_get_expr(p.relpartbound, p.oid),
                                        'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') AS b(bounds)
        WHERE i.inhparent = 'certificates'::regclass
          -- The default partition has no bounds (regexp_match gives NULL): never dropped.
          AND b.bounds IS NOT NULL
        ORDER BY 2
    LOOP
        CONTINUE WHEN part.hi >= cutoff;
        partition_name := part.name;
        range_start := part.lo;
        range_end := part.hi;
        EXECUTE format('SELECT count(*) FROM %I', part.name) INTO certificates_dropped;
        EXECUTE format('DROP TABLE %I', part.name);
        DELETE FROM certificate_serials WHERE not_after >= part.lo AND not_after < part.hi;
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION drop_expired_certificate_partitions(interval, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_expired_certificate_partitions(interval, timestamptz) TO keyinfra_app;

DROP TABLE expiry_alerts;
DROP TYPE alert_status;
DROP TYPE alert_channel;
DROP TABLE job_runs;
DROP TABLE job_schedules;
ALTER TABLE users DROP CONSTRAINT users_email_shape;
ALTER TABLE users DROP COLUMN email;
