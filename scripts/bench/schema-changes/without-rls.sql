-- For ./scripts/bench-record-issuances only (SCHEMA_CHANGE=scripts/bench/schema-changes/without-rls.sql): row-level security off on the four tables.
-- Measurement, never for a real database (issue 22, docs/benchmarks.md).
ALTER TABLE certificates DISABLE ROW LEVEL SECURITY; ALTER TABLE private_keys DISABLE ROW LEVEL SECURITY;
ALTER TABLE audit_events DISABLE ROW LEVEL SECURITY; ALTER TABLE certificate_serials DISABLE ROW LEVEL SECURITY;
