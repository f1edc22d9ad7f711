//! The challenges this replica made, kept in memory until they are used, withdrawn here or
//! expire, so that a device presenting one is signed for with no statement before it.
//! The claim's own statement was most of what an EST or SCEP enrollment cost beyond a REST
//! issue (docs/benchmarks.md, Issue 20).
//!
//! The cache decides nothing alone:
//! - it knows only challenges this replica made, without approval (a held request needs
//!   the database's claim); any other secret is claimed in the database as before;
//! - what it hands out is checked again by the certificate's own statement (migration
//!   0032), which uses the challenge and fails unless it is still unused, unwithdrawn and
//!   its owner enabled. So a challenge withdrawn, or its owner disabled, or used on another
//!   replica costs at most one signature here, never a second certificate;
//! - on this replica an entry is handed out once (taken), as the database's claim would
//!   be: a second request with the same secret is refused while the first is in flight,
//!   and a release (the enrollment failed) makes it available again.
//!
//! It holds the secret's SHA-256 and the terms, as the table does; never the secret.

use std::collections::HashMap;
use std::sync::{Mutex, MutexGuard, PoisonError};

use keyinfra_db::enrollment_challenges::ClaimedChallenge;
use time::OffsetDateTime;
use uuid::Uuid;

/// Entries one replica keeps (about 300 bytes each, so about 20 MiB at most). Beyond it,
/// expired ones are dropped, and if none has expired a new challenge is not kept: the
/// database's claim serves it. Every entry is a challenge made here (an owner holds at
/// most 100 live ones, and each create takes from the per-user write rate), so a full
/// cache takes many users, and costs only the claim's statement.
pub(crate) const LIVE_CHALLENGE_CAPACITY: usize = 65_536;

/// What the cache says of a presented secret.
#[derive(Debug)]
pub(crate) enum Lookup {
    /// Made here, unexpired, not taken: now taken by the caller.
    Granted(ClaimedChallenge),
    /// Made here, but taken by another request or expired: the same answer as the claim's.
    Refused,
    /// Not made here (or no longer kept): ask the database.
    Unknown,
}

#[derive(Debug)]
struct Entry {
    terms: ClaimedChallenge,
    taken: bool,
}

#[derive(Debug, Default)]
struct Entries {
    by_hash: HashMap<[u8; 32], Entry>,
    hash_of: HashMap<Uuid, [u8; 32]>,
}

impl Entries {
    fn remove(&mut self, hash: &[u8; 32]) {
        if let Some(entry) = self.by_hash.remove(hash) {
            self.hash_of.remove(&entry.terms.id);
        }
    }

    fn drop_expired(&mut self, now: OffsetDateTime) {
        self.by_hash.retain(|_, e| e.terms.expires_at > now);
        let by_hash = &self.by_hash;
        self.hash_of.retain(|_, hash| by_hash.contains_key(hash));
    }
}

/// The cache, shared by the challenge use cases (which fill and take) and the issuer
/// (which forgets a challenge once its certificate is recorded, or found spent).
#[derive(Debug)]
pub(crate) struct LiveChallenges {
    entries: Mutex<Entries>,
    capacity: usize,
}

impl Default for LiveChallenges {
    fn default() -> Self {
        Self::with_capacity(LIVE_CHALLENGE_CAPACITY)
    }
}

impl LiveChallenges {
    pub(crate) fn with_capacity(capacity: usize) -> Self {
        Self {
            entries: Mutex::default(),
            capacity,
        }
    }

    /// No code path panics while holding the lock, and every change leaves the maps
    /// consistent, so a poisoned lock's contents are still good.
    fn lock(&self) -> MutexGuard<'_, Entries> {
        self.entries.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Keeps a challenge just made here (without approval). False when the cache is full
    /// of unexpired entries and this one is left to the database.
    pub(crate) fn remember(
        &self,
        secret_hash: [u8; 32],
        terms: ClaimedChallenge,
        now: OffsetDateTime,
    ) -> bool {
        let mut entries = self.lock();
        if entries.by_hash.len() >= self.capacity {
            entries.drop_expired(now);
        }
        if entries.by_hash.len() >= self.capacity {
            return false;
        }
        entries.hash_of.insert(terms.id, secret_hash);
        entries.by_hash.insert(
            secret_hash,
            Entry {
                terms,
                taken: false,
            },
        );
        true
    }

    /// Takes the challenge whose secret hashes to `secret_hash`, if this replica made it.
    pub(crate) fn take(&self, secret_hash: &[u8; 32], now: OffsetDateTime) -> Lookup {
        let mut entries = self.lock();
        let Some(entry) = entries.by_hash.get_mut(secret_hash) else {
            return Lookup::Unknown;
        };
        if entry.terms.expires_at <= now {
            entries.remove(secret_hash);
            return Lookup::Refused;
        }
        if entry.taken {
            return Lookup::Refused;
        }
        entry.taken = true;
        Lookup::Granted(entry.terms.clone())
    }

    /// Makes a taken challenge available again; true if `id` was one this cache handed
    /// out (then the database holds no claim to release).
    pub(crate) fn give_back(&self, id: Uuid) -> bool {
        let mut entries = self.lock();
        let Some(hash) = entries.hash_of.get(&id).copied() else {
            return false;
        };
        match entries.by_hash.get_mut(&hash) {
            Some(entry) if entry.taken => {
                entry.taken = false;
                true
            }
            _ => false,
        }
    }

    /// Drops the challenge: its certificate is recorded, it was withdrawn here, or the
    /// database found it spent.
    pub(crate) fn forget(&self, id: Uuid) {
        let mut entries = self.lock();
        if let Some(hash) = entries.hash_of.get(&id).copied() {
            entries.remove(&hash);
        }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        let entries = self.lock();
        assert_eq!(entries.by_hash.len(), entries.hash_of.len());
        entries.by_hash.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::Duration;

    fn at(minutes: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(20_000) + Duration::minutes(minutes)
    }

    fn terms(n: u128, expires_at: OffsetDateTime) -> ([u8; 32], ClaimedChallenge) {
        let mut hash = [0u8; 32];
        hash[..16].copy_from_slice(&n.to_be_bytes());
        let terms = ClaimedChallenge {
            id: Uuid::from_u128(n),
            owner_id: Uuid::from_u128(1000),
            profile: "device".into(),
            validity_days: None,
            subject: None,
            names: None,
            approval: false,
            expires_at,
        };
        (hash, terms)
    }

    #[test]
    fn an_entry_is_handed_out_once_until_given_back() {
        let live = LiveChallenges::default();
        let (hash, t) = terms(1, at(60));
        assert!(matches!(live.take(&hash, at(0)), Lookup::Unknown));
        assert!(live.remember(hash, t.clone(), at(0)));
        assert!(matches!(live.take(&hash, at(1)), Lookup::Granted(g) if g == t));
        assert!(matches!(live.take(&hash, at(1)), Lookup::Refused));
        assert!(live.give_back(t.id));
        assert!(!live.give_back(t.id), "only a taken entry is given back");
        assert!(!live.give_back(Uuid::from_u128(2)));
        assert!(matches!(live.take(&hash, at(2)), Lookup::Granted(_)));
        live.forget(t.id);
        assert!(matches!(live.take(&hash, at(2)), Lookup::Unknown));
        assert!(!live.give_back(t.id), "a forgotten entry is the database's");
        assert_eq!(live.len(), 0);
    }

    #[test]
    fn an_expired_entry_is_refused_and_dropped() {
        let live = LiveChallenges::default();
        let (hash, t) = terms(1, at(60));
        live.remember(hash, t, at(0));
        assert!(matches!(live.take(&hash, at(60)), Lookup::Refused));
        assert!(matches!(live.take(&hash, at(0)), Lookup::Unknown));
        assert_eq!(live.len(), 0);
    }

    #[test]
    fn a_full_cache_drops_expired_entries_and_then_leaves_new_ones_to_the_database() {
        let live = LiveChallenges::with_capacity(2);
        let (h1, t1) = terms(1, at(10));
        let (h2, t2) = terms(2, at(60));
        let (h3, t3) = terms(3, at(60));
        let (h4, t4) = terms(4, at(60));
        assert!(live.remember(h1, t1, at(0)));
        assert!(live.remember(h2, t2, at(0)));
        assert!(
            !live.remember(h3, t3.clone(), at(5)),
            "nothing has expired yet"
        );
        assert!(matches!(live.take(&h3, at(5)), Lookup::Unknown));
        assert!(live.remember(h3, t3, at(10)), "the first one expired");
        assert!(matches!(live.take(&h1, at(10)), Lookup::Unknown));
        assert!(!live.remember(h4, t4, at(10)));
        assert_eq!(live.len(), 2);
    }
}
