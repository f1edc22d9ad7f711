//! The connections used last, handed out again first.
//!
//! sqlx's pool queues idle connections first in, first out: a request takes the connection
//! that has been idle longest. Under a steady trickle of work (one client, one request at a
//! time) that rotates every statement through every open connection, and each time it meets
//! a PostgreSQL backend whose memory has gone cold in the CPU's caches. Measured on the
//! issuance path at concurrency 1 (docs/benchmarks.md, Issue 22, "sixth session"):
//! PostgreSQL's CPU per certificate fell from about 0.75 ms to 0.65-0.69 ms, and the rate
//! rose by about 15%, when only one or two connections took turns.
//!
//! So the hot paths ([`Database::acquire`](crate::Database::acquire)) take the most recently
//! returned connection from a small stack kept beside the pool, last in, first out, and put
//! it back there when done. What the pool guarantees still holds:
//! - a connection idle in the stack for `PoolSettings::warm_for` (50 ms by default) goes back
//!   to the pool (a task sweeps the stack), so an idle server holds nothing out of the pool,
//!   the pool's own idle checks (the ping after `validate_after_idle`, the idle timeout)
//!   apply as before, and a request that waits for a pooled connection never waits on one
//!   sitting idle here for long;
//! - a connection that has gone round the stack for [`WARM_SPELL`] goes back to the pool
//!   once, where `max_lifetime` is applied to it;
//! - only a connection whose work ended cleanly is kept ([`WarmConnection::finished`]); one
//!   whose statement failed, or whose future was dropped mid-statement, goes back to the
//!   pool, which pings it on release and closes it if it is not usable;
//! - once the pool closes, nothing is kept.

use std::sync::{Arc, Mutex, Weak};
use std::time::{Duration, Instant};

use sqlx::Postgres;
use sqlx::pool::PoolConnection;

/// Connections kept at most: one for each group-commit batch in flight, which is where the
/// trickle of work that rotates connections comes from.
const CAPACITY: usize = 2;

/// A connection kept going round the stack this long goes back to the pool once.
const WARM_SPELL: Duration = Duration::from_secs(60);

/// The stack of warm connections of one pool.
#[derive(Debug)]
pub(crate) struct WarmConnections {
    /// Its pool: once that closes, nothing more is kept.
    pool: sqlx::PgPool,
    stack: Mutex<Vec<Kept>>,
}

#[derive(Debug)]
struct Kept {
    conn: PoolConnection<Postgres>,
    /// When it was put back.
    idle_since: Instant,
    /// When it was first taken from the pool.
    out_since: Instant,
}

impl WarmConnections {
    pub(crate) fn new(pool: sqlx::PgPool) -> Self {
        Self {
            pool,
            stack: Mutex::new(Vec::with_capacity(CAPACITY)),
        }
    }

    /// Starts the sweep that returns connections unused for `warm_for` to the pool, every
    /// `warm_for`; it ends with the last handle to `warm`.
    pub(crate) fn start_sweeping(warm: &Arc<Self>, warm_for: Duration) {
        let weak: Weak<Self> = Arc::downgrade(warm);
        let warm_for = warm_for.max(Duration::from_millis(1));
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(warm_for);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                let Some(warm) = weak.upgrade() else { return };
                warm.return_idle(warm_for);
            }
        });
    }

    /// The connection put back last, if one is kept; with when it first left the pool.
    pub(crate) fn take(&self) -> Option<(PoolConnection<Postgres>, Instant)> {
        let kept = self.lock().pop()?;
        Some((kept.conn, kept.out_since))
    }

    /// Keeps `conn` for the next taker, unless the stack is full, the pool closed, or the
    /// connection is due for the pool's own checks; it then goes back to the pool.
    pub(crate) fn put_back(&self, conn: PoolConnection<Postgres>, out_since: Instant) {
        if out_since.elapsed() >= WARM_SPELL || self.pool.is_closed() {
            return;
        }
        let mut stack = self.lock();
        if stack.len() < CAPACITY {
            stack.push(Kept {
                conn,
                idle_since: Instant::now(),
                out_since,
            });
        }
    }

    /// Returns every connection idle at least `idle` to the pool.
    pub(crate) fn return_idle(&self, idle: Duration) {
        // Dropped outside the lock: a returned connection wakes a waiter of the pool.
        let returned: Vec<Kept> = {
            let mut stack = self.lock();
            let (stale, fresh) = std::mem::take(&mut *stack)
                .into_iter()
                .partition(|kept| kept.idle_since.elapsed() >= idle);
            *stack = fresh;
            stale
        };
        drop(returned);
    }

    /// Returns every kept connection to the pool (before it closes).
    pub(crate) fn return_all(&self) {
        let returned = std::mem::take(&mut *self.lock());
        drop(returned);
    }

    /// How many connections are kept now.
    pub(crate) fn len(&self) -> usize {
        self.lock().len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Kept>> {
        // A panic while holding this lock cannot leave the stack inconsistent: every
        // critical section is a push, a pop or a swap of the whole vector.
        self.stack
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

/// A connection from [`Database::acquire`](crate::Database::acquire): used like a pooled
/// connection. When dropped after [`WarmConnection::finished`] it goes back to the warm
/// stack, otherwise to the pool.
#[derive(Debug)]
pub struct WarmConnection {
    conn: Option<PoolConnection<Postgres>>,
    out_since: Instant,
    home: Arc<WarmConnections>,
    finished: bool,
}

impl WarmConnection {
    pub(crate) fn new(
        conn: PoolConnection<Postgres>,
        out_since: Instant,
        home: Arc<WarmConnections>,
    ) -> Self {
        Self {
            conn: Some(conn),
            out_since,
            home,
            finished: false,
        }
    }

    /// The work on this connection ended cleanly (its statements answered, no transaction
    /// open): it may be kept warm. Without this, it goes back to the pool.
    pub(crate) fn finished(&mut self) {
        self.finished = true;
    }
}

impl std::ops::Deref for WarmConnection {
    type Target = sqlx::PgConnection;
    fn deref(&self) -> &Self::Target {
        // Present until drop: only Drop takes it.
        self.conn.as_deref().unwrap_or_else(|| unreachable!())
    }
}

impl std::ops::DerefMut for WarmConnection {
    fn deref_mut(&mut self) -> &mut Self::Target {
        self.conn.as_deref_mut().unwrap_or_else(|| unreachable!())
    }
}

impl Drop for WarmConnection {
    fn drop(&mut self) {
        if let Some(conn) = self.conn.take()
            && self.finished
        {
            self.home.put_back(conn, self.out_since);
        }
    }
}
