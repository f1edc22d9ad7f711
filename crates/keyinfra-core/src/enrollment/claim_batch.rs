//! Claims of enrollment challenges, gathered into one statement.
//!
//! Every SCEP and EST enrollment that authenticates with a challenge claims it before it
//! issues: one statement of its own, because the claim's terms (owner, profile, names) are
//! what the certificate is signed with. Alone that is one round trip; with many devices
//! enrolling at once, PostgreSQL's cost per statement (executor start-up, the definer
//! function's call, the commit) is paid once per device, while their certificates share
//! group-commit batches ([`crate::group_commit`]). So claims queue here, and one task sends
//! whatever is queued as one statement ([`store::claim_many`]); a lone claim goes at once,
//! and claims that arrive while one statement is in flight go together in the next.
//!
//! A batch changes nothing a claim means: each secret is claimed in the order it arrived,
//! with its own clock reading, by the same definer function, and the statement commits as
//! a lone claim does (without waiting for its WAL flush; [`store::claim`] says why that is
//! safe). A batch that fails wrote nothing, and each of its members then claims alone, which
//! answers each exactly. A member whose request went away before its answer arrived gives
//! its challenge back, so that a dropped connection does not use up a device's challenge.

use keyinfra_db::enrollment_challenges::{self as store, ClaimedChallenge};
use keyinfra_db::{Actor, Database, DbError, UnavailableReason};
use std::sync::Arc;
use time::OffsetDateTime;

use tokio::sync::{Semaphore, mpsc, oneshot};

/// Most claims in one statement.
pub const MAX_CLAIMS: usize = 64;

/// Claim statements in flight at once: while PostgreSQL runs one, the next is gathered
/// and sent, so that a claim never waits a whole statement for a turn.
pub const CONCURRENT_CLAIM_STATEMENTS: usize = 2;

/// Claims queued beyond this wait for room (back-pressure); they are never dropped.
const QUEUE_CAPACITY: usize = 4096;

/// The queue and the task that drains it; the task ends when the batcher is dropped.
#[derive(Debug)]
pub(crate) struct ClaimBatcher {
    sender: mpsc::Sender<PendingClaim>,
}

#[derive(Debug)]
struct PendingClaim {
    db: Database,
    secret_hash: [u8; 32],
    now: OffsetDateTime,
    reply: oneshot::Sender<Answer>,
}

/// What a batch answers one member.
#[derive(Debug)]
enum Answer {
    Claimed(Option<ClaimedChallenge>),
    /// The batch wrote nothing: claim alone.
    Alone,
    /// The database could not be reached: answered at once, so that clients are not kept
    /// waiting for a second pool timeout.
    Unavailable {
        reason: UnavailableReason,
        retry_after: std::time::Duration,
    },
}

impl ClaimBatcher {
    /// Spawns the draining task on the current Tokio runtime.
    pub(crate) fn start() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        tokio::spawn(drain(receiver));
        Self { sender }
    }

    /// Claims the challenge whose secret hashes to `secret_hash`, as [`store::claim`] does.
    pub(crate) async fn claim(
        &self,
        db: &Database,
        secret_hash: [u8; 32],
        now: OffsetDateTime,
    ) -> Result<Option<ClaimedChallenge>, DbError> {
        let (reply, answer) = oneshot::channel();
        let pending = PendingClaim {
            db: db.clone(),
            secret_hash,
            now,
            reply,
        };
        if self.sender.send(pending).await.is_ok() {
            match answer.await {
                Ok(Answer::Claimed(claimed)) => return Ok(claimed),
                Ok(Answer::Unavailable {
                    reason,
                    retry_after,
                }) => {
                    return Err(DbError::Unavailable {
                        reason,
                        retry_after,
                    });
                }
                Ok(Answer::Alone) | Err(_) => {}
            }
        }
        // The batch wrote nothing, or the task is gone (its runtime shutting down).
        store::claim(db, &secret_hash, now).await
    }
}

async fn drain(mut receiver: mpsc::Receiver<PendingClaim>) {
    let slots = Arc::new(Semaphore::new(CONCURRENT_CLAIM_STATEMENTS));
    loop {
        // Wait for a free slot first: whatever arrives meanwhile joins the next statement.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        let mut batch = vec![first];
        while batch.len() < MAX_CLAIMS
            && let Ok(next) = receiver.try_recv()
        {
            batch.push(next);
        }
        tokio::spawn(async move {
            // Members share a statement only on the same database.
            while let Some(db) = batch.first().map(|member| member.db.clone()) {
                let (group, rest) = batch
                    .into_iter()
                    .partition(|member| member.db.same_pool(&db));
                batch = rest;
                claim_group(&db, group).await;
            }
            drop(slot);
        });
    }
}

async fn claim_group(db: &Database, group: Vec<PendingClaim>) {
    metrics::histogram!("keyinfra_challenge_claim_batch_size").record(group.len() as f64);
    let secret_hashes: Vec<Vec<u8>> = group.iter().map(|m| m.secret_hash.to_vec()).collect();
    let nows: Vec<OffsetDateTime> = group.iter().map(|m| m.now).collect();
    let claimed = match store::claim_many(db, &secret_hashes, &nows).await {
        Ok(claimed) => claimed,
        Err(DbError::Unavailable {
            reason,
            retry_after,
        }) => {
            for member in group {
                let _ = member.reply.send(Answer::Unavailable {
                    reason,
                    retry_after,
                });
            }
            return;
        }
        Err(error) => {
            tracing::debug!(members = group.len(), %error, "challenge claims not batched; members claim alone");
            for member in group {
                let _ = member.reply.send(Answer::Alone);
            }
            return;
        }
    };
    for (member, claimed) in group.into_iter().zip(claimed) {
        if let Err(Answer::Claimed(Some(lost))) = member.reply.send(Answer::Claimed(claimed)) {
            give_back(db, &lost).await;
        }
    }
}

/// Releases a challenge claimed for a request that went away before it heard so.
async fn give_back(db: &Database, lost: &ClaimedChallenge) {
    let released = async {
        let mut tx = db.begin(&Actor::Anonymous).await?;
        let released = store::release(&mut tx, lost.id).await?;
        tx.commit().await?;
        Ok::<bool, DbError>(released)
    };
    match released.await {
        Ok(_) => {
            tracing::debug!(challenge_id = %lost.id, "challenge given back: its request went away")
        }
        Err(error) => {
            tracing::warn!(challenge_id = %lost.id, %error, "a challenge claimed for a request that went away could not be given back")
        }
    }
}
