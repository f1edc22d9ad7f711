# Sourced by scripts/bench-issuance and scripts/bench-checkpoint-latency: whether a
# PostgreSQL checkpoint ran while a measurement did. Its writes share the disk with the
# commits' WAL flushes, and a concurrency-1 row's p99 then grows several-fold
# (docs/benchmarks.md, Issue 22, "seventh session").
#
#   read -r started busy < <(checkpoint_state)    # before the measurement, and again after
#
# Prints the checkpoints started so far (pg_stat_bgwriter counts one when it starts) and 1
# when the checkpointer is inside one now (its wait event is its idle loop's otherwise), for
# the server at $PG_URL.
checkpoint_state() {
  psql "$PG_URL/postgres" -qtAXc "SELECT checkpoints_timed + checkpoints_req,
    (SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'checkpointer'
       AND wait_event IS NOT NULL AND wait_event <> 'CheckpointerMain')
    FROM pg_stat_bgwriter" | tr '|' ' '
}

# checkpoint_ran STARTED_BEFORE BUSY_BEFORE STARTED_AFTER BUSY_AFTER: "1" when a checkpoint
# started in between or was running at either end, else "0".
checkpoint_ran() {
  echo $(( $3 > $1 || $2 > 0 || $4 > 0 ? 1 : 0 ))
}
