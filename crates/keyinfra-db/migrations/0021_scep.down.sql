CREATE OR REPLACE FUNCTION delete_orphaned_private_keys(batch integer DEFAULT 10000) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
BEGIN ATOMIC
    WITH orphans AS (
        SELECT k.id FROM private_keys AS k
        WHERE NOT EXISTS (SELECT 1 FROM certificates AS c WHERE c.private_key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM certificate_authorities AS a WHERE a.private_key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM ocsp_responders AS o WHERE o.private_key_id = k.id)
        LIMIT batch
    ), gone AS (
        DELETE FROM private_keys WHERE id IN (SELECT id FROM orphans) RETURNING 1
    )
    SELECT count(*) FROM gone;
END;
DROP TABLE scep_registration_authorities;
