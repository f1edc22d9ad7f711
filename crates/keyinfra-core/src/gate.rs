//! Bounded concurrency for CPU- and memory-heavy blocking work: Argon2id (19 MiB and tens of
//! milliseconds each) and RSA key generation (up to seconds each).
//!
//! Without a bound, such work runs on tokio's blocking pool, which grows to 512 threads: a
//! burst of logins took the process to 819 MB. A gate lets `permits` jobs run at once (the
//! number of cores: more cannot finish sooner) and at most `max_waiting` more wait, each for
//! at most `max_wait`; beyond that the caller is told to come back later (503 with
//! Retry-After) instead of queueing without end.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use tokio::sync::Semaphore;

use crate::CoreError;

#[derive(Debug)]
pub struct WorkGate {
    /// What runs behind it, for the error's code and the log ("password_hashing", ...).
    what: &'static str,
    permits: Semaphore,
    waiting: AtomicUsize,
    max_waiting: usize,
    max_wait: Duration,
}

/// Takes back a waiter's place however its wait ends (done, timed out, or cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

impl WorkGate {
    pub fn new(what: &'static str, permits: usize, max_waiting: usize, max_wait: Duration) -> Self {
        Self {
            what,
            permits: Semaphore::new(permits.max(1)),
            waiting: AtomicUsize::new(0),
            max_waiting,
            max_wait,
        }
    }

    /// One permit per core, 16 waiters per core, a wait of at most 2 s.
    pub fn per_core(what: &'static str) -> Self {
        let cores = std::thread::available_parallelism().map_or(2, std::num::NonZero::get);
        Self::new(what, cores, cores * 16, Duration::from_secs(2))
    }

    /// Runs `work` on the blocking pool once a permit is free, or answers
    /// [`CoreError::Busy`] when too many wait or the wait is too long.
    pub async fn run<T, F>(&self, work: F) -> Result<T, CoreError>
    where
        T: Send + 'static,
        F: FnOnce() -> T + Send + 'static,
    {
        let busy = || {
            metrics::counter!("keyinfra_work_refused_total", "work" => self.what).increment(1);
            CoreError::Busy {
                what: self.what,
                retry_after: time::Duration::seconds(1),
            }
        };
        let permit = match self.permits.try_acquire() {
            Ok(permit) => permit,
            Err(_) => {
                if self.waiting.fetch_add(1, Ordering::AcqRel) >= self.max_waiting {
                    self.waiting.fetch_sub(1, Ordering::AcqRel);
                    return Err(busy());
                }
                let _place = Waiting(&self.waiting);
                match tokio::time::timeout(self.max_wait, self.permits.acquire()).await {
                    Ok(Ok(permit)) => permit,
                    _ => return Err(busy()),
                }
            }
        };
        let result = tokio::task::spawn_blocking(work)
            .await
            .map_err(|e| CoreError::Internal(format!("{} stopped: {e}", self.what)));
        drop(permit);
        result
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Runs a job on `gate` that holds its permit until the returned sender is used (or
    /// dropped); returns once the job is running, with the job's task.
    async fn hold_permit(
        gate: &Arc<WorkGate>,
    ) -> (
        std::sync::mpsc::Sender<()>,
        tokio::task::JoinHandle<Result<u32, CoreError>>,
    ) {
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (started, is_started) = tokio::sync::oneshot::channel();
        let gate = Arc::clone(gate);
        let holder = tokio::spawn(async move {
            gate.run(move || {
                let _ = started.send(());
                let _ = released.recv();
                7
            })
            .await
        });
        is_started.await.unwrap();
        (release, holder)
    }

    #[tokio::test]
    async fn a_full_gate_with_no_room_to_wait_refuses_at_once() {
        let gate = Arc::new(WorkGate::new("test", 1, 0, Duration::from_secs(60)));
        let (release, holder) = hold_permit(&gate).await;
        let refused = gate.run(|| 8).await.unwrap_err();
        assert!(
            matches!(refused, CoreError::Busy { what: "test", .. }),
            "{refused:?}"
        );
        release.send(()).unwrap();
        assert_eq!(holder.await.unwrap().unwrap(), 7);
        // The permit came back, and so did the refused caller's place.
        assert_eq!(gate.run(|| 9).await.unwrap(), 9);
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
    }

    #[tokio::test]
    async fn a_waiter_gets_the_permit_when_it_frees_and_gives_up_after_max_wait() {
        let gate = Arc::new(WorkGate::new("test", 1, 4, Duration::from_millis(50)));
        let (release, holder) = hold_permit(&gate).await;
        // Nobody releases within max_wait: the waiter is told to come back.
        assert!(matches!(gate.run(|| ()).await, Err(CoreError::Busy { .. })));
        release.send(()).unwrap();
        holder.await.unwrap().unwrap();
        assert_eq!(gate.run(|| 1).await.unwrap(), 1);
        assert_eq!(gate.waiting.load(Ordering::Acquire), 0);
    }
}
