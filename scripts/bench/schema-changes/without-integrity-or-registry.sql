-- For ./scripts/bench-record-issuances only (SCHEMA_CHANGE=scripts/bench/schema-changes/without-integrity-or-registry.sql): without-integrity.sql, and no serial registry row (its trigger dropped).
-- Measurement, never for a real database (issue 22, docs/benchmarks.md).
ALTER TABLE certificates DROP CONSTRAINT certificates_ca_id_fkey, DROP CONSTRAINT certificates_created_by_fkey,
  DROP CONSTRAINT certificates_owner_id_fkey, DROP CONSTRAINT certificates_private_key_id_fkey;
ALTER TABLE certificate_serials DROP CONSTRAINT certificate_serials_ca_id_fkey;
ALTER TABLE private_keys DROP CONSTRAINT private_keys_owner_id_fkey;
DO $$ DECLARE r record; BEGIN
FOR r IN SELECT conrelid::regclass AS t, conname FROM pg_constraint
  WHERE contype = 'c' AND conrelid::regclass::text IN ('certificates','certificate_serials','private_keys','audit_events') AND coninhcount = 0
LOOP EXECUTE format('ALTER TABLE %s DROP CONSTRAINT %I', r.t, r.conname); END LOOP; END $$;
DROP INDEX certificates_created_by_idx, certificates_private_key_idx, certificates_active_not_after_idx,
  private_keys_kek_version_idx, private_keys_owner_idx, audit_events_action_idx, audit_events_actor_idx, audit_events_target_idx;
ALTER TABLE certificates DISABLE ROW LEVEL SECURITY; ALTER TABLE private_keys DISABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY; ALTER TABLE certificate_serials DISABLE ROW LEVEL SECURITY;
DROP TRIGGER certificates_register_serials ON certificates;
