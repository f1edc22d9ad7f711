DROP FUNCTION keyinfra_record_issuances;
DROP FUNCTION keyinfra_insert_issued;
DROP FUNCTION keyinfra_lock_and_count_active(uuid, timestamptz);

CREATE OR REPLACE FUNCTION keyinfra_serial_is_canonical(serial text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN serial ~ '^([0-9A-F]{2}){1,20}$' AND serial !~ '^00';

CREATE OR REPLACE FUNCTION keyinfra_san_list_is_valid(sans text[]) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN cardinality(sans) <= 1024
        AND coalesce((SELECT bool_and(s IS NOT NULL AND s ~ '^(DNS|IP|EMAIL|URI):[^[:cntrl:]]+$')
                      FROM unnest(sans) AS s), true);
