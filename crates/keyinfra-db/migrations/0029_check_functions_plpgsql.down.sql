-- Back to 0012's SQL-language bodies, which the planner inlines into the CHECKs.

CREATE OR REPLACE FUNCTION keyinfra_serial_is_canonical(serial text) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    RETURN octet_length(serial) BETWEEN 2 AND 40
        AND octet_length(serial) % 2 = 0
        AND btrim(serial, '0123456789ABCDEF') = ''
        AND left(serial, 2) <> '00';

CREATE OR REPLACE FUNCTION keyinfra_san_list_is_valid(sans text[]) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    RETURN cardinality(sans) <= 1024
        AND (cardinality(sans) = 0
             OR (strpos(array_to_string(sans, ''), E'\n') = 0
                 AND array_to_string(sans, E'\n', E'\x01')
                     ~ '^(DNS|IP|EMAIL|URI):[^[:cntrl:]]+(\n(DNS|IP|EMAIL|URI):[^[:cntrl:]]+)*$'));
