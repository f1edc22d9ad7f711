DROP FUNCTION certificate_stats_visible();
DROP FUNCTION refresh_certificate_stats();
DROP MATERIALIZED VIEW certificate_stats;
