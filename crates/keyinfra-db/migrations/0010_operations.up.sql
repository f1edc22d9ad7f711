-- 0010 operations: scheduled jobs, expiry alerts, e-mail addresses, and retention that also
-- removes the keys of dropped certificates.
--
-- * Jobs. Every replica runs the same scheduler; job_schedules holds one row per job, and a
--   replica runs a job only after claiming its row with one conditional UPDATE (due, and
--   no unexpired lease). The UPDATE moves next_run_at on, so each scheduled run is claimed
--   by exactly one replica; the lease (renewed while the job runs) keeps a second replica
--   from starting the same job while the first still works, and lets another replica take
--   over when the holder died. job_runs is the history that GET /api/v1/jobs and /metrics
--   show; the scheduler keeps the newest 1000 runs per job.
-- * Expiry alerts. One row per (certificate, channel, recipient): the UNIQUE constraint is
--   what makes "announced once per window" hold across restarts and replicas (the enqueue
--   is INSERT ... ON CONFLICT DO NOTHING). Rows are delivered from this table (an outbox):
--   claimed with FOR UPDATE SKIP LOCKED, retried with backoff, and marked sent, failed or
--   skipped (the certificate was renewed or revoked before delivery).
-- * users.email: where a user's alerts go. Optional; the application validates the address,
--   the database guards its shape.

ALTER TABLE users ADD COLUMN email text;
ALTER TABLE users ADD CONSTRAINT users_email_shape CHECK (
    email IS NULL OR (char_length(email) BETWEEN 3 AND 254 AND email ~ '^[^[:space:][:cntrl:]@]+@[^[:space:][:cntrl:]@]+$')
);

CREATE TABLE job_schedules (
    name             text        PRIMARY KEY,
    next_run_at      timestamptz NOT NULL,
    -- Set while a replica runs the job; NULL or past means nobody does.
    lease_until      timestamptz,
    running_on       text,
    last_started_at  timestamptz,
    last_finished_at timestamptz,
    last_outcome     text,
    last_duration_ms bigint,
    last_success_at  timestamptz,
    last_message     text,

    CONSTRAINT job_schedules_name_shape CHECK (name ~ '^[a-z][a-z0-9-]{0,62}$'),
    CONSTRAINT job_schedules_outcome CHECK (last_outcome IN ('succeeded', 'failed'))
);

CREATE TABLE job_runs (
    id          bigint      GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    -- CASCADE: the history belongs to its schedule row.
    job         text        NOT NULL REFERENCES job_schedules (name) ON DELETE CASCADE,
    replica     text        NOT NULL,
    -- Scheduled runs are 'schedule'; `keyinfra jobs run NAME` is 'manual'.
    trigger     text        NOT NULL,
    started_at  timestamptz NOT NULL,
    finished_at timestamptz,
    -- NULL while running.
    outcome     text,
    duration_ms bigint,
    message     text,

    CONSTRAINT job_runs_trigger CHECK (trigger IN ('schedule', 'manual')),
    CONSTRAINT job_runs_outcome CHECK (outcome IN ('succeeded', 'failed')),
    CONSTRAINT job_runs_finished_after_started CHECK (finished_at IS NULL OR finished_at >= started_at)
);
-- Serves: a job's recent runs, and pruning the oldest.
CREATE INDEX job_runs_job_idx ON job_runs (job, id DESC);

CREATE TYPE alert_channel AS ENUM ('log', 'webhook', 'email');
CREATE TYPE alert_status AS ENUM ('pending', 'sent', 'failed', 'skipped');

CREATE TABLE expiry_alerts (
    id              uuid          PRIMARY KEY DEFAULT gen_random_uuid(),
    -- CASCADE: retention drops the alert with its certificate.
    certificate_id  uuid          NOT NULL REFERENCES certificate_serials (certificate_id) ON DELETE CASCADE,
    ca_id           uuid          NOT NULL REFERENCES certificate_authorities (id) ON DELETE RESTRICT,
    -- The expiry announced (certificates never change it, so this is "the window").
    not_after       timestamptz   NOT NULL,
    -- SET NULL: the row stays in the record when the owner is deleted.
    owner_id        uuid          REFERENCES users (id) ON DELETE SET NULL,
    channel         alert_channel NOT NULL,
    -- '' for the log, the URL for a webhook, the address for e-mail.
    recipient       text          NOT NULL,
    status          alert_status  NOT NULL DEFAULT 'pending',
    attempts        integer       NOT NULL DEFAULT 0,
    next_attempt_at timestamptz   NOT NULL DEFAULT now(),
    created_at      timestamptz   NOT NULL DEFAULT now(),
    sent_at         timestamptz,
    last_error      text,

    CONSTRAINT expiry_alerts_once UNIQUE (certificate_id, channel, recipient),
    CONSTRAINT expiry_alerts_attempts_non_negative CHECK (attempts >= 0),
    CONSTRAINT expiry_alerts_sent_when_sent CHECK ((status = 'sent') = (sent_at IS NOT NULL))
);
-- Serves: the delivery loop (due pending rows, oldest first).
CREATE INDEX expiry_alerts_pending_idx ON expiry_alerts (next_attempt_at) WHERE status = 'pending';
-- Serves: GET /api/v1/alerts (newest first, keyset on (created_at, id)).
CREATE INDEX expiry_alerts_created_idx ON expiry_alerts (created_at DESC, id DESC);
-- Serves: ON DELETE SET NULL of owner_id.
CREATE INDEX expiry_alerts_owner_idx ON expiry_alerts (owner_id) WHERE owner_id IS NOT NULL;

-- Operations data is for administrators and the system only.
ALTER TABLE job_schedules ENABLE ROW LEVEL SECURITY;
ALTER TABLE job_runs ENABLE ROW LEVEL SECURITY;
ALTER TABLE expiry_alerts ENABLE ROW LEVEL SECURITY;
CREATE POLICY job_schedules_admin ON job_schedules TO keyinfra_app
    USING ((SELECT keyinfra_sees_all())) WITH CHECK ((SELECT keyinfra_sees_all()));
CREATE POLICY job_runs_admin ON job_runs TO keyinfra_app
    USING ((SELECT keyinfra_sees_all())) WITH CHECK ((SELECT keyinfra_sees_all()));
CREATE POLICY expiry_alerts_admin ON expiry_alerts TO keyinfra_app
    USING ((SELECT keyinfra_sees_all())) WITH CHECK ((SELECT keyinfra_sees_all()));
GRANT SELECT, INSERT, UPDATE ON job_schedules TO keyinfra_app;
GRANT SELECT, INSERT, UPDATE, DELETE ON job_runs TO keyinfra_app;
GRANT SELECT, INSERT, UPDATE ON expiry_alerts TO keyinfra_app;

-- Retention, reworked for large tables. 0004's function dropped every expired partition in
-- one transaction and deleted the registry rows after each DROP, so the ACCESS EXCLUSIVE lock
-- that dropping a partition takes on `certificates` was held while hundreds of thousands of
-- rows were deleted: at a million certificates, every request touching certificates would
-- wait for over a minute (docs/benchmarks.md). Now:
-- * the registry rows go first (row locks only; revocations and alerts follow by ON DELETE
--   CASCADE, later versions' renewed_from by SET NULL), then the DROP, whose parent lock
--   lasts until the caller commits, so callers drop one partition per transaction
--   (`max_partitions`);
-- * the private keys that only dropped certificates used are deleted afterwards, in
--   batches, by delete_orphaned_private_keys(): a key referenced by no certificate and no CA
--   is an orphan (issuance writes a key and its certificate in one statement, so no other
--   transaction ever sees a new key without its certificate). Running it again is harmless.
DROP FUNCTION drop_expired_certificate_partitions(interval, timestamptz);
CREATE FUNCTION drop_expired_certificate_partitions(retention interval DEFAULT '2 years',
                                                    as_of timestamptz DEFAULT now(),
                                                    max_partitions integer DEFAULT NULL)
    RETURNS TABLE (partition_name text, range_start timestamptz, range_end timestamptz, certificates_dropped bigint)
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp
AS $$
DECLARE
    cutoff timestamptz := as_of - retention;
    part record;
BEGIN
    IF retention IS NULL OR retention < interval '0' THEN
        RAISE EXCEPTION 'retention must be a non-negative interval, not %', retention
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(hashtext('keyinfra.certificate_partitions'));

    FOR part IN
        SELECT p.relname::text AS name, b.bounds[1]::timestamptz AS lo, b.bounds[2]::timestamptz AS hi
        FROM pg_inherits AS i
        JOIN pg_class AS p ON p.oid = i.inhrelid
        CROSS JOIN LATERAL regexp_match(pg_get_expr(p.relpartbound, p.oid),
                                        'FROM \(''([^'']*)''\) TO \(''([^'']*)''\)') AS b(bounds)
        WHERE i.inhparent = 'certificates'::regclass
          -- The default partition has no bounds (regexp_match gives NULL): never dropped.
          AND b.bounds IS NOT NULL
          AND b.bounds[2]::timestamptz < cutoff
        ORDER BY 2
        LIMIT max_partitions
    LOOP
        partition_name := part.name;
        range_start := part.lo;
        range_end := part.hi;
        DELETE FROM certificate_serials WHERE not_after >= part.lo AND not_after < part.hi;
        EXECUTE format('SELECT count(*) FROM %I', part.name) INTO certificates_dropped;
        EXECUTE format('DROP TABLE %I', part.name);
        RETURN NEXT;
    END LOOP;
END
$$;
REVOKE ALL ON FUNCTION drop_expired_certificate_partitions(interval, timestamptz, integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION drop_expired_certificate_partitions(interval, timestamptz, integer) TO keyinfra_app;

-- Deletes up to `batch` private keys that no certificate and no CA uses; returns how many.
CREATE FUNCTION delete_orphaned_private_keys(batch integer DEFAULT 10000) RETURNS bigint
    LANGUAGE sql SECURITY DEFINER SET search_path = public, pg_temp
BEGIN ATOMIC
    WITH orphans AS (
        SELECT k.id FROM private_keys AS k
        WHERE NOT EXISTS (SELECT 1 FROM certificates AS c WHERE c.private_key_id = k.id)
          AND NOT EXISTS (SELECT 1 FROM certificate_authorities AS a WHERE a.private_key_id = k.id)
        LIMIT batch
    ), gone AS (
        DELETE FROM private_keys WHERE id IN (SELECT id FROM orphans) RETURNING 1
    )
    SELECT count(*) FROM gone;
END;
REVOKE ALL ON FUNCTION delete_orphaned_private_keys(integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION delete_orphaned_private_keys(integer) TO keyinfra_app;
