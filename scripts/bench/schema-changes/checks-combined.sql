-- For ./scripts/bench-record-issuances only (SCHEMA_CHANGE=scripts/bench/schema-changes/checks-combined.sql): each table's CHECK constraints replaced by one, their AND.
-- Measurement, never for a real database (issue 22, docs/benchmarks.md).
-- One CHECK per table, the AND of all of them (measurement only).
DO $$ DECLARE t text; expr text; r record; BEGIN
FOREACH t IN ARRAY ARRAY['certificates','certificate_serials','private_keys','audit_events'] LOOP
  SELECT string_agg('(' || substring(pg_get_constraintdef(oid) FROM 'CHECK \((.*)\)$') || ')', ' AND ') INTO expr
    FROM pg_constraint WHERE contype = 'c' AND conrelid = t::regclass AND coninhcount = 0;
  FOR r IN SELECT conname FROM pg_constraint WHERE contype = 'c' AND conrelid = t::regclass AND coninhcount = 0 LOOP
    EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', t, r.conname);
  END LOOP;
  EXECUTE format('ALTER TABLE %s ADD CONSTRAINT %I CHECK (%s)', t, t || '_all', expr);
END LOOP; END $$;
