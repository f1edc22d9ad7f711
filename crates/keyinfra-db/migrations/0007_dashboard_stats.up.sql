-- 0007 dashboard statistics as a materialized view.
--
-- * One row per (CA, owner, status) with its count and how many of those are ACTIVE and
--   expire within 7 and 30 days of the refresh. refreshed_at says "as of when".
-- * owner_id is coalesced to the nil UUID for certificates without an owner, so that the
--   unique index that REFRESH ... CONCURRENTLY needs covers every row.
-- * A materialized view has no row-level security, so the application role cannot read it
--   directly: certificate_stats_visible() returns the rows the caller's identity may see,
--   and refresh_certificate_stats() refreshes it concurrently (readers are never blocked).

CREATE MATERIALIZED VIEW certificate_stats AS
SELECT
    c.ca_id,
    coalesce(c.owner_id, '00000000-0000-0000-0000-000000000000'::uuid) AS owner_id,
    c.status,
    count(*) AS certificates,
    count(*) FILTER (WHERE c.status = 'ACTIVE' AND c.not_after > now()
                       AND c.not_after <= now() + interval '7 days') AS expiring_7d,
    count(*) FILTER (WHERE c.status = 'ACTIVE' AND c.not_after > now()
                       AND c.not_after <= now() + interval '30 days') AS expiring_30d,
    now() AS refreshed_at
FROM certificates AS c
GROUP BY c.ca_id, coalesce(c.owner_id, '00000000-0000-0000-0000-000000000000'::uuid), c.status
WITH DATA;

-- Serves: REFRESH MATERIALIZED VIEW CONCURRENTLY (requires a unique index on plain columns
-- covering all rows), and the per-owner dashboard lookup.
CREATE UNIQUE INDEX certificate_stats_key ON certificate_stats (owner_id, ca_id, status);

CREATE FUNCTION refresh_certificate_stats() RETURNS timestamptz
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
BEGIN
    -- One refresh at a time across replicas; a second caller waits, then refreshes again
    -- (cheap, and always correct).
    PERFORM pg_advisory_xact_lock(hashtext('keyinfra.certificate_stats'));
    REFRESH MATERIALIZED VIEW CONCURRENTLY certificate_stats;
    RETURN (SELECT max(refreshed_at) FROM certificate_stats);
END
$$;

-- The statistics rows the current identity may see: all for ADMIN and SYSTEM, the caller's
-- own otherwise, nothing without an identity.
CREATE FUNCTION certificate_stats_visible()
    RETURNS TABLE (ca_id uuid, owner_id uuid, status certificate_status, certificates bigint,
                   expiring_7d bigint, expiring_30d bigint, refreshed_at timestamptz)
    LANGUAGE sql STABLE SECURITY DEFINER SET search_path = public, pg_temp
AS $$
    SELECT s.ca_id, s.owner_id, s.status, s.certificates, s.expiring_7d, s.expiring_30d, s.refreshed_at
    FROM certificate_stats AS s
    WHERE keyinfra_sees_all() OR s.owner_id = keyinfra_current_user_id()
$$;

REVOKE ALL ON FUNCTION refresh_certificate_stats() FROM PUBLIC;
REVOKE ALL ON FUNCTION certificate_stats_visible() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION refresh_certificate_stats() TO keyinfra_app;
GRANT EXECUTE ON FUNCTION certificate_stats_visible() TO keyinfra_app;
