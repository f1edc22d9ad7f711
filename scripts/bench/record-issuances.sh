# Sourced by scripts/bench-record-issuances and scripts/profile-issuance: the SQL of one call
# to keyinfra_record_issuances(), the function every group-commit batch calls, recording
# COUNT certificates as the admin, each with a sealed-key row, its registry row (by the
# trigger) and its audit event, shaped like the server's (random key bytes, DER and serials),
# none from an enrollment challenge (p_challenge_id NULL, as for the API's issues).
#
#   record_issuances_sql COUNT ADMIN_ID CA_ID ID_FUNCTION DER_BYTES NAME
#
# COUNT is a number or a pgbench variable (":n"); ID_FUNCTION makes the rows' ids, the audit
# events' included (keyinfra_uuid_v7, as the server's are time-ordered, or gen_random_uuid,
# as rows written before migration 0013 are); DER_BYTES is the size of the random stand-in
# for the DER; NAME prefixes the subjects and SANs. Inside the SQL, chr(58) stands for ':',
# which pgbench would read as the start of a variable.
record_issuances_sql() {
  local count=$1 admin_id=$2 ca_id=$3 id_function=$4 der_bytes=$5 name=$6
  cat <<SQL
WITH g AS (
  SELECT $id_function() AS kid, $id_function() AS cid, $id_function() AS aid,
         gen_random_bytes($der_bytes) AS der,
         '7' || upper(encode(gen_random_bytes(15), 'hex')) || 'A' AS serial, i
  FROM generate_series(1, $count) AS i
)
SELECT keyinfra_record_issuances(
  '$admin_id', 'ADMIN', NULL, NULL, NULL, now(),
  array_agg(kid), array_agg('$admin_id'::uuid), array_agg('ecdsa-p256'::text),
  array_agg(digest(kid::text, 'sha256')), array_agg(gen_random_bytes(154)),
  array_agg(gen_random_bytes(12)), array_agg(gen_random_bytes(32)), array_agg(1),
  array_agg(cid), array_agg('$ca_id'::uuid), array_agg('$admin_id'::uuid), array_agg(serial),
  array_agg('CN=$name-' || i), array_agg(('["DNS' || chr(58) || '$name.example.net"]')::jsonb),
  array_agg(now()), array_agg(now() + interval '90 days'), array_agg(der),
  array_agg(digest(der, 'sha256')), array_agg('ecdsa-p256'::text), array_agg('device'::text),
  array_agg('$admin_id'::uuid), array_agg('api'::text), array_agg(aid),
  array_agg('$admin_id'::uuid),
  array_agg('admin'::text),
  array_agg('certificate.issued'::text), array_agg('certificate'::text), array_agg(cid),
  array_agg(jsonb_build_object('ca_id', '$ca_id', 'serial_number', serial)),
  NULL::uuid[])
FROM g;
SQL
}
