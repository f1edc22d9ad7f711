-- For ./scripts/bench-record-issuances only (SCHEMA_CHANGE=scripts/bench/schema-changes/without-checks.sql): every CHECK constraint of the four tables a first issue writes, dropped.
-- Measurement, never for a real database (issue 22, docs/benchmarks.md).
DO $$ DECLARE r record; BEGIN
FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
  WHERE contype = 'c' AND conrelid::regclass::text IN ('certificates','certificate_serials','private_keys','audit_events') AND coninhcount = 0
LOOP EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname); END LOOP; END $$;
