//! Group commit for first issues.
//!
//! PostgreSQL spends much of an issuance's cost per transaction and per statement (the token
//! check, executor start-up for the partitioned table with its CHECKs and triggers, COMMIT),
//! not per row: docs/benchmarks.md has the figures. So a first issue is signed in its own
//! request, then queued, and one task records whatever is queued as one transaction in one
//! round trip ([`certificates::record_issued_batch`]: one multi-row INSERT per table). Its
//! members wait for PostgreSQL, not for BEGIN and COMMIT to travel. Alone (nothing queued,
//! nothing in flight), a request is a batch of one and records itself in its own task; under
//! load, batches grow by themselves while the previous transaction commits. Nothing waits on
//! a timer for company.
//!
//! A batch is an optimisation, never a rule of its own:
//! - members share a transaction only when they share the [`Actor`], so the database checks
//!   the same token and applies the same row-level security as it would to each alone;
//! - the quota is checked for each owner's total in the batch, under the owner's advisory
//!   lock, exactly as one request checks its one certificate;
//! - when anything in a batch fails, every member is answered [`BatchOutcome::Retry`] and
//!   takes the ordinary one-transaction path, which gives each its own exact answer (a serial
//!   collision retried, an unknown owner 422, a quota 422). Only an unavailable database is
//!   answered directly, so that clients are not kept waiting for a second pool timeout;
//! - a turn in a batch is like a pooled connection: a request still queued after the pool's
//!   acquire timeout (both batches stuck on a slow database) is answered 503 and is never
//!   written, and neither is one whose client went away before its batch took it. Each
//!   member's [`Turn`] decides this race with one compare-and-swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicU8, Ordering};

use keyinfra_db::audit::{AuditAction, NewAuditEvent};
use keyinfra_db::certificates::{self, IssuedRows, OwnerQuota};
use keyinfra_db::private_keys::NewSealedKey;
use keyinfra_db::{Actor, Database, DbError, UnavailableReason};
use keyinfra_pki::KeyAlgorithm;
use time::OffsetDateTime;
use tokio::sync::{Semaphore, mpsc, oneshot};
use uuid::Uuid;

use crate::certificates::CertificateDraft;
use crate::error::CoreError;

/// Most issuances recorded by one statement. Larger batches gain little (the per-row work
/// then dominates) and hold their owners' locks longer.
pub const MAX_BATCH: usize = 64;

/// Batch transactions in flight at once. Two keep both cores busy: while PostgreSQL records
/// and commits one batch, the next is gathered and sent.
pub const CONCURRENT_BATCHES: usize = 2;

/// While a busy batch is in flight, a new one starts only with this many members (or when
/// that batch ends). Otherwise the second slot would keep taking batches of one or two, and
/// PostgreSQL's cost per certificate is mostly per batch. With nothing in flight a batch
/// starts at once, so a lone request never waits.
pub const MIN_OVERLAPPING_BATCH: usize = 8;
/// Batches in flight with this many members in all or fewer are light load (one or two
/// clients, one request each): a new batch then starts at once beside them, so that two
/// requests commit side by side instead of one waiting for the other's commit. Under real
/// load the batches in flight hold more, and [`MIN_OVERLAPPING_BATCH`] applies.
pub const LIGHT_LOAD_MEMBERS: usize = 2;

/// Requests queued beyond this wait for room (back-pressure), they are never dropped.
const QUEUE_CAPACITY: usize = 4096;

/// A signed first issue, owned, waiting for its batch.
#[derive(Debug)]
pub(crate) struct QueuedIssue {
    pub db: Database,
    pub actor: Actor,
    /// The owner and their quota, when a quota applies.
    pub quota: Option<(Uuid, u32)>,
    pub now: OffsetDateTime,
    pub key: Option<QueuedKey>,
    pub certificate: QueuedCertificate,
    /// Made when the issue was signed: the audit log lists a batch's events by id.
    pub audit_id: Uuid,
    /// The enrollment challenge the issue used up, linked in the batch's statement.
    pub challenge_id: Option<Uuid>,
    pub audit_actor_id: Option<Uuid>,
    pub audit_actor_name: Option<&'static str>,
    pub audit_details: serde_json::Value,
}

#[derive(Debug)]
pub(crate) struct QueuedKey {
    pub id: Uuid,
    pub owner_id: Option<Uuid>,
    pub algorithm: KeyAlgorithm,
    pub public_key_fingerprint: [u8; 32],
    pub sealed: keyinfra_pki::seal::SealedKey,
}

/// A signed first issue: its draft (version 1, no renewal) and what signing produced.
#[derive(Debug)]
pub(crate) struct QueuedCertificate {
    pub draft: CertificateDraft,
    pub serial_number: String,
    pub certificate_der: Vec<u8>,
    pub fingerprint_sha256: [u8; 32],
}

impl QueuedIssue {
    fn rows(&self) -> IssuedRows<'_> {
        let c = &self.certificate;
        IssuedRows {
            key: self.key.as_ref().map(|k| NewSealedKey {
                id: k.id,
                owner_id: k.owner_id,
                algorithm: k.algorithm,
                public_key_fingerprint: &k.public_key_fingerprint,
                ciphertext: &k.sealed.ciphertext,
                nonce: &k.sealed.nonce,
                salt: &k.sealed.salt,
                kek_version: k.sealed.kek_version,
            }),
            certificate: c
                .draft
                .row(&c.serial_number, &c.certificate_der, &c.fingerprint_sha256),
            audit_id: self.audit_id,
            audit: NewAuditEvent {
                actor_id: self.audit_actor_id,
                actor_name: self.audit_actor_name,
                action: AuditAction::CertificateIssued,
                target_type: Some("certificate"),
                target_id: Some(c.draft.id),
                details: self.audit_details.clone(),
            },
            challenge_id: self.challenge_id,
        }
    }
}

/// What became of a queued issue.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum BatchOutcome {
    /// Committed.
    Recorded,
    /// Nothing of the batch was written; record this issue on the one-transaction path.
    Retry,
    /// The database could not be reached; nothing was written.
    Unavailable {
        reason: UnavailableReason,
        retry_after: std::time::Duration,
    },
}

/// Who owns a queued member: still the queue, a batch that took it, or nobody (its request
/// gave up or went away). Set once from `WAITING`, by whoever comes first.
#[derive(Debug, Default)]
struct Turn(AtomicU8);

const WAITING: u8 = 0;
const TAKEN: u8 = 1;
const ABANDONED: u8 = 2;

impl Turn {
    fn is_waiting(&self) -> bool {
        self.0.load(Ordering::Acquire) == WAITING
    }
    fn take(&self) -> bool {
        self.0
            .compare_exchange(WAITING, TAKEN, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
    fn abandon(&self) -> bool {
        self.0
            .compare_exchange(WAITING, ABANDONED, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

/// Abandons the turn when the request's future is dropped before a batch took it.
struct AbandonOnDrop(Arc<Turn>);

impl Drop for AbandonOnDrop {
    fn drop(&mut self) {
        self.0.abandon();
    }
}

/// The queue and the task that drains it. Started by the first issuance of an
/// [`Issuer`](crate::issuer::Issuer); it ends when the issuer is dropped.
#[derive(Debug)]
pub(crate) struct IssueBatcher {
    sender: mpsc::Sender<Member>,
    /// Shared with the draining task, so that a lone request can take a batch's place.
    slots: Arc<Semaphore>,
    in_flight: Arc<InFlight>,
}

impl IssueBatcher {
    /// Spawns the draining task on the current Tokio runtime.
    pub(crate) fn start() -> Self {
        let (sender, receiver) = mpsc::channel(QUEUE_CAPACITY);
        let slots = Arc::new(Semaphore::new(CONCURRENT_BATCHES));
        let in_flight = Arc::new(InFlight::default());
        tokio::spawn(drain(receiver, Arc::clone(&slots), Arc::clone(&in_flight)));
        Self {
            sender,
            slots,
            in_flight,
        }
    }

    /// Records one issue, in a batch, and answers what became of it.
    pub(crate) async fn record(&self, issue: QueuedIssue) -> BatchOutcome {
        // A request that finds nothing queued and nothing in flight would be a batch of one
        // anyway: it records itself in its own task. Through the queue it would cost the
        // hand-off to the draining task, a task spawned for the batch and the wake-up of the
        // request with the outcome, up to a quarter of the server's CPU per certificate at
        // concurrency 1 (docs/benchmarks.md, Issue 22, "a lone request records itself").
        if let Some(lone) = self.lone_turn() {
            return record_alone(&issue, lone).await;
        }
        self.queue(issue).await
    }

    /// A batch's place for a lone request: nothing queued, no batch in flight, a slot free.
    fn lone_turn(&self) -> Option<LoneTurn> {
        let nothing_queued = self.sender.capacity() == self.sender.max_capacity();
        if !nothing_queued || self.in_flight.count.load(Ordering::Acquire) != 0 {
            return None;
        }
        let slot = Arc::clone(&self.slots).try_acquire_owned().ok()?;
        Some(LoneTurn {
            running: BatchInFlight::start(&self.in_flight, 1),
            _slot: slot,
        })
    }

    /// Queues one issue and waits for its batch's outcome.
    async fn queue(&self, issue: QueuedIssue) -> BatchOutcome {
        let patience = issue.db.acquire_timeout();
        let turn = Arc::new(Turn::default());
        let _abandon_if_cancelled = AbandonOnDrop(Arc::clone(&turn));
        let (reply, mut outcome) = oneshot::channel();
        let member = Member {
            issue,
            reply,
            turn: Arc::clone(&turn),
        };
        if self.sender.send(member).await.is_err() {
            // The task is gone (its runtime shut down): nothing was written.
            return BatchOutcome::Retry;
        }
        match tokio::time::timeout(patience, &mut outcome).await {
            Ok(answer) => answer.unwrap_or(BatchOutcome::Retry),
            // Still queued: give up, as a request that found no connection does.
            Err(_) if turn.abandon() => unavailable(DbError::pool_exhausted()),
            // A batch took it meanwhile: its transaction decides, within its own timeouts.
            Err(_) => outcome.await.unwrap_or(BatchOutcome::Retry),
        }
    }
}

/// A lone request's batch: counted in flight, and holding a slot, as a queued batch is.
/// Fields drop in order: the batch ends before its slot frees, as in [`drain`].
struct LoneTurn {
    running: BatchInFlight,
    _slot: tokio::sync::OwnedSemaphorePermit,
}

/// A batch of one, recorded in the request's own task. If the request goes away meanwhile,
/// its statement decides, as a batch's does once it took its members.
async fn record_alone(issue: &QueuedIssue, lone: LoneTurn) -> BatchOutcome {
    let outcome = write_outcome(&[issue]).await;
    drop(lone.running);
    outcome
}

fn unavailable(error: DbError) -> BatchOutcome {
    match error {
        DbError::Unavailable {
            reason,
            retry_after,
        } => BatchOutcome::Unavailable {
            reason,
            retry_after,
        },
        _ => BatchOutcome::Retry,
    }
}

#[derive(Debug)]
struct Member {
    issue: QueuedIssue,
    reply: oneshot::Sender<BatchOutcome>,
    turn: Arc<Turn>,
}

/// Batches in flight, their members in all, and a signal each time one ends.
#[derive(Debug, Default)]
struct InFlight {
    count: std::sync::atomic::AtomicUsize,
    members: std::sync::atomic::AtomicUsize,
    ended: tokio::sync::Notify,
}

impl InFlight {
    /// Whether a new batch of `size` may start now: nothing in flight, or enough members to
    /// be worth a transaction of its own, or only a light load in flight.
    fn may_start(&self, size: usize) -> bool {
        self.count.load(Ordering::Acquire) == 0
            || size >= MIN_OVERLAPPING_BATCH
            || self.members.load(Ordering::Acquire) + size <= LIGHT_LOAD_MEMBERS
    }
}

/// One batch in flight; its end is counted and signalled even if its task unwinds, so that
/// the queue never waits for a batch that is gone.
struct BatchInFlight {
    in_flight: Arc<InFlight>,
    members: usize,
}

impl BatchInFlight {
    fn start(in_flight: &Arc<InFlight>, members: usize) -> Self {
        in_flight.members.fetch_add(members, Ordering::AcqRel);
        in_flight.count.fetch_add(1, Ordering::AcqRel);
        Self {
            in_flight: Arc::clone(in_flight),
            members,
        }
    }
}

impl Drop for BatchInFlight {
    fn drop(&mut self) {
        self.in_flight.count.fetch_sub(1, Ordering::AcqRel);
        self.in_flight
            .members
            .fetch_sub(self.members, Ordering::AcqRel);
        self.in_flight.ended.notify_waiters();
    }
}

async fn drain(
    mut receiver: mpsc::Receiver<Member>,
    slots: Arc<Semaphore>,
    in_flight: Arc<InFlight>,
) {
    loop {
        // Wait for a free slot first: whatever arrives meanwhile joins the next batch.
        let Ok(slot) = Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let Some(first) = receiver.recv().await else {
            return;
        };
        let mut batch = Vec::new();
        let mut next = Some(first);
        loop {
            while let Some(member) = next.take() {
                batch.push(member);
                if batch.len() < MAX_BATCH {
                    next = receiver.try_recv().ok();
                }
            }
            // Members are taken only when their batch starts: until then a request may still
            // give up (after the acquire timeout) and is then dropped unanswered.
            batch.retain(|member| member.turn.is_waiting());
            // Registered before the counts are read, so that an end in between is not missed.
            let ended = in_flight.ended.notified();
            tokio::pin!(ended);
            ended.as_mut().enable();
            if in_flight.may_start(batch.len()) {
                break;
            }
            tokio::select! {
                member = receiver.recv() => match member {
                    Some(member) => next = Some(member),
                    None => break,
                },
                () = &mut ended => break,
            }
        }
        batch.retain(|member| member.turn.take());
        if batch.is_empty() {
            continue;
        }
        let running = BatchInFlight::start(&in_flight, batch.len());
        tokio::spawn(async move {
            for group in group_by_actor(batch) {
                record_group(group).await;
            }
            // The batch ends before its slot frees, so a waiting batch sees the end first.
            drop(running);
            drop(slot);
        });
    }
}

/// Members that may share a transaction: the same actor on the same database.
fn group_by_actor(batch: Vec<Member>) -> Vec<Vec<Member>> {
    let mut groups: Vec<Vec<Member>> = Vec::new();
    for member in batch {
        let same = groups.iter_mut().find(|group| {
            let first = &group[0].issue;
            first.actor == member.issue.actor && first.db.same_pool(&member.issue.db)
        });
        match same {
            Some(group) => group.push(member),
            None => groups.push(vec![member]),
        }
    }
    groups
}

async fn record_group(group: Vec<Member>) {
    let issues: Vec<&QueuedIssue> = group.iter().map(|member| &member.issue).collect();
    let outcome = write_outcome(&issues).await;
    for member in group {
        // A member whose request was cancelled after its batch took it no longer listens.
        let _ = member.reply.send(outcome);
    }
}

/// Records `group` as one batch and says what became of it.
async fn write_outcome(group: &[&QueuedIssue]) -> BatchOutcome {
    metrics::histogram!("keyinfra_issuance_batch_size").record(group.len() as f64);
    match write_group(group).await {
        Ok(()) => BatchOutcome::Recorded,
        Err(CoreError::Db(error @ DbError::Unavailable { .. })) => unavailable(error),
        Err(error) => {
            // Expected now and then (a quota reached, an owner deleted meanwhile): each
            // member learns its own answer on the one-transaction path.
            tracing::debug!(members = group.len(), %error, "issuance batch not recorded; members retry alone");
            BatchOutcome::Retry
        }
    }
}

async fn write_group(group: &[&QueuedIssue]) -> Result<(), CoreError> {
    let Some(first) = group.first() else {
        return Ok(());
    };
    // Every owner whose quota applies; the database counts what the batch adds for each.
    let quotas: Vec<OwnerQuota> = group
        .iter()
        .filter_map(|issue| issue.quota)
        .map(|(owner_id, limit)| OwnerQuota { owner_id, limit })
        .collect();
    // The quota counts the certificates active at the earliest member's clock, which counts
    // at least as many as each member's own clock would.
    let as_of = group
        .iter()
        .map(|issue| issue.now)
        .min()
        .unwrap_or(first.now);
    let rows: Vec<IssuedRows<'_>> = group.iter().map(|issue| issue.rows()).collect();
    certificates::record_issued_batch(&first.db, &first.actor, &quotas, as_of, &rows).await?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_lone_request_takes_a_batchs_place_only_when_nothing_is_in_flight() {
        let batcher = IssueBatcher::start();
        let lone = batcher
            .lone_turn()
            .expect("nothing queued, nothing in flight");
        assert_eq!(batcher.in_flight.count.load(Ordering::Acquire), 1);
        assert_eq!(batcher.in_flight.members.load(Ordering::Acquire), 1);
        assert!(
            batcher.lone_turn().is_none(),
            "a second request joins the queue, where it may share a batch"
        );
        drop(lone);
        assert_eq!(batcher.in_flight.count.load(Ordering::Acquire), 0);
        // Its slot is back: two lone turns in a row each find one.
        let again = batcher.lone_turn().expect("the first one ended");
        drop(again);
        let busy = BatchInFlight::start(&batcher.in_flight, 5);
        assert!(batcher.lone_turn().is_none(), "a queued batch is in flight");
        drop(busy);
        assert!(batcher.lone_turn().is_some());
    }

    #[test]
    fn a_batch_overlaps_another_under_light_load_or_when_it_is_worth_a_transaction() {
        let in_flight = Arc::new(InFlight::default());
        assert!(in_flight.may_start(1), "nothing in flight");
        let lone = BatchInFlight::start(&in_flight, 1);
        // Two clients, a request each: the second commits beside the first.
        assert!(in_flight.may_start(1));
        assert!(!in_flight.may_start(2));
        assert!(in_flight.may_start(MIN_OVERLAPPING_BATCH));
        drop(lone);
        let busy = BatchInFlight::start(&in_flight, 5);
        assert!(!in_flight.may_start(1));
        assert!(!in_flight.may_start(MIN_OVERLAPPING_BATCH - 1));
        assert!(in_flight.may_start(MIN_OVERLAPPING_BATCH));
        drop(busy);
        // Every end is counted off, members too.
        assert_eq!(in_flight.count.load(Ordering::Acquire), 0);
        assert_eq!(in_flight.members.load(Ordering::Acquire), 0);
        assert!(in_flight.may_start(1));
    }
}
