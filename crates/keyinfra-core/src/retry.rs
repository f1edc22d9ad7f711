//! Bounded retries of transactions that PostgreSQL aborted for a transient conflict: a
//! serialization failure (40001) or a deadlock (40P01). Both mean "run it again", and a
//! fresh attempt usually succeeds; after [`ATTEMPTS`] the conflict reaches the client as
//! 503 + Retry-After.

use std::future::Future;
use std::time::Duration;

use keyinfra_db::DbError;

use crate::error::CoreError;

/// Attempts in all, the first included.
pub const ATTEMPTS: u32 = 3;

fn is_transient(e: &CoreError) -> bool {
    matches!(e, CoreError::Db(DbError::RetryableConflict))
}

/// Runs `attempt` until it succeeds, fails for another reason, or has been tried
/// [`ATTEMPTS`] times. Each attempt must be a whole transaction (nothing half-done is
/// carried over), which is how every use case is written.
pub async fn transient<T, F, Fut>(what: &str, mut attempt: F) -> Result<T, CoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, CoreError>>,
{
    let mut tries = 0;
    loop {
        tries += 1;
        match attempt().await {
            Err(e) if is_transient(&e) && tries < ATTEMPTS => {
                tracing::info!(what, attempt = tries, "transaction conflict; retrying");
                metrics::counter!("keyinfra_db_conflict_retries_total").increment(1);
                // A little jitter-free pause lets the other transaction finish.
                tokio::time::sleep(Duration::from_millis(10 * u64::from(tries))).await;
            }
            other => return other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn conflicts_are_retried_a_bounded_number_of_times() {
        let mut calls = 0;
        let ok = transient("test", || {
            calls += 1;
            let n = calls;
            async move {
                if n < 3 {
                    Err(CoreError::Db(DbError::RetryableConflict))
                } else {
                    Ok(n)
                }
            }
        })
        .await
        .unwrap();
        assert_eq!(ok, 3);

        let mut calls = 0;
        let err = transient::<(), _, _>("test", || {
            calls += 1;
            async { Err(CoreError::Db(DbError::RetryableConflict)) }
        })
        .await
        .unwrap_err();
        assert!(matches!(err, CoreError::Db(DbError::RetryableConflict)));
        assert_eq!(calls, ATTEMPTS);

        let mut calls = 0;
        let err = transient::<(), _, _>("test", || {
            calls += 1;
            async { Err(CoreError::NotFound("certificate")) }
        })
        .await
        .unwrap_err();
        assert!(matches!(err, CoreError::NotFound(_)));
        assert_eq!(calls, 1, "other errors are not retried");
    }
}
