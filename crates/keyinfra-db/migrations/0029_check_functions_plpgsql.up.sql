-- 0029 the CHECK functions of certificates and the serial registry in PL/pgSQL (issue 22).
--
-- 0012 made keyinfra_serial_is_canonical and keyinfra_san_list_is_valid single SQL
-- expressions that the planner inlines into the CHECKs that call them, which beat 0004's
-- sub-SELECT and regular expressions per row. But a CHECK is prepared again at every
-- executor start: ExecConstraints reads the constraint's stored expression back from text
-- (stringToNode) and plans it, and inlining an SQL function means reading and planning its
-- body too, for each of the three CHECKs on certificates and the registry, in every
-- statement. A first issue alone is one statement, so it paid that in full: a profile of
-- PostgreSQL during issuance at concurrency 1 (`perf record --call-graph dwarf`) put
-- ExecConstraints at 22% of PostgreSQL's time, half of it reading node trees.
--
-- PL/pgSQL is not inlined: the CHECK's expression is then a bare function call, and the
-- function's body is compiled once per session and its expression plan cached. The bodies
-- are 0012's expressions, unchanged, so what they accept is too (the truth tables in
-- keyinfra-db's tests). A call costs a little per row, which a batch of 64 pays 64 times,
-- yet it still came out ahead there (docs/benchmarks.md, "Issue 22").

CREATE OR REPLACE FUNCTION keyinfra_serial_is_canonical(serial text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
AS $$
BEGIN
    -- One to twenty octets in uppercase hex, no leading zero octet.
    RETURN octet_length(serial) BETWEEN 2 AND 40
        AND octet_length(serial) % 2 = 0
        AND btrim(serial, '0123456789ABCDEF') = ''
        AND left(serial, 2) <> '00';
END
$$;

CREATE OR REPLACE FUNCTION keyinfra_san_list_is_valid(sans text[]) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE
AS $$
BEGIN
    -- Every element is TYPE:value with no control character, and none is NULL (0012 says
    -- how the newline-joined match achieves that).
    RETURN cardinality(sans) <= 1024
        AND (cardinality(sans) = 0
             OR (strpos(array_to_string(sans, ''), E'\n') = 0
                 AND array_to_string(sans, E'\n', E'\x01')
                     ~ '^(DNS|IP|EMAIL|URI):[^[:cntrl:]]+(\n(DNS|IP|EMAIL|URI):[^[:cntrl:]]+)*$'));
END
$$;
