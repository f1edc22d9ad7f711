-- For ./scripts/bench-record-issuances only (SCHEMA_CHANGE=scripts/bench/schema-changes/without-secondary-indexes.sql): the eight indexes of those tables that enforce no uniqueness, dropped.
-- Measurement, never for a real database (issue 22, docs/benchmarks.md).
DROP INDEX certificates_created_by_idx, certificates_private_key_idx, certificates_active_not_after_idx,
  private_keys_kek_version_idx, private_keys_owner_idx, audit_events_action_idx, audit_events_actor_idx, audit_events_target_idx;
