//! Pre-signed answers without a nonce, per certificate and CertID hash, in memory; their
//! statuses also answer requests with a nonce, which are signed anew.
//!
//! Bounded: a full shard drops an arbitrary eighth of its entries (HashMap order), which
//! costs a re-signature for those, never a wrong answer. Only answers about certificates
//! the CA issued are kept (good or revoked): `unknown` answers are never cached, so random
//! serials cannot fill the cache.
//!
//! Revocation must show at once, so an entry is evicted when its certificate is revoked:
//! on this replica by the revocation itself, on the others by the database's notification
//! ([`super::OcspService::run_revocation_listener`]). A fill that read the status before
//! an eviction must not put the old answer back: every eviction advances `generation`, and
//! a fill is stored only if no eviction happened since its status was read. While the
//! notifications are not being received (before the listener is up, or after its
//! connection dropped) the cache is off and every answer is signed fresh.

use std::collections::HashMap;
use std::hash::{BuildHasher, RandomState};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use keyinfra_pki::ocsp::{CertStatus, HashAlgorithm};
use time::OffsetDateTime;
use uuid::Uuid;

const SHARDS: usize = 16;

/// Which answer: the CA, the serial (canonical hex), and the CertID's hash algorithm (the
/// response echoes the CertID, so a SHA-1 and a SHA-256 request get different bytes).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct CacheKey {
    pub(crate) ca_id: Uuid,
    pub(crate) serial: String,
    pub(crate) hash: HashAlgorithm,
}

/// A signed OCSPResponse and what the HTTP layer needs to let others cache it.
#[derive(Debug)]
pub struct CachedAnswer {
    /// The CertID's DER the answer echoes: a request whose CertID differs in encoding
    /// (NULL parameters or none) is answered fresh.
    pub(crate) cert_id_der: Vec<u8>,
    pub der: Arc<[u8]>,
    pub this_update: OffsetDateTime,
    pub next_update: OffsetDateTime,
    /// Served until then, then signed again (half the validity: a client always gets at
    /// least half of it).
    pub(crate) fresh_until: OffsetDateTime,
    /// What the answer says (good, or revoked with its time and reason): a request with a
    /// nonce is signed anew with it, without reading the database.
    pub(crate) status: CertStatus,
}

#[derive(Debug)]
pub(crate) struct ResponseCache {
    shards: Vec<Mutex<HashMap<CacheKey, Arc<CachedAnswer>>>>,
    per_shard: usize,
    hasher: RandomState,
    generation: AtomicU64,
    enabled: AtomicBool,
    /// A capacity of 0 (KEYINFRA_OCSP_CACHE_ENTRIES=0) keeps the cache off for good.
    capacity: usize,
}

impl ResponseCache {
    pub(crate) fn new(capacity: usize) -> Self {
        Self {
            shards: (0..SHARDS).map(|_| Mutex::new(HashMap::new())).collect(),
            per_shard: capacity.div_ceil(SHARDS).max(1),
            hasher: RandomState::new(),
            generation: AtomicU64::new(0),
            enabled: AtomicBool::new(false),
            capacity,
        }
    }

    fn shard(&self, key: &CacheKey) -> &Mutex<HashMap<CacheKey, Arc<CachedAnswer>>> {
        // The hash is uniform: its low bits choose.
        &self.shards[(self.hasher.hash_one(key) as usize) % SHARDS]
    }

    /// The cached answer, if it is still fresh at `now` and echoes this CertID.
    pub(crate) fn get(
        &self,
        key: &CacheKey,
        cert_id_der: &[u8],
        now: OffsetDateTime,
    ) -> Option<Arc<CachedAnswer>> {
        if !self.enabled.load(Ordering::Acquire) {
            return None;
        }
        let shard = self.shard(key).lock().ok()?;
        let answer = shard.get(key)?;
        (now < answer.fresh_until && answer.cert_id_der == cert_id_der).then(|| Arc::clone(answer))
    }

    /// Whether answers are kept now (a fill made while off would be thrown away).
    pub(crate) fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Acquire)
    }

    /// The generation to pass to [`ResponseCache::put`]: read it before the status.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::Acquire)
    }

    /// Stores an answer unless an eviction happened since `generation` was read.
    pub(crate) fn put(&self, key: CacheKey, answer: Arc<CachedAnswer>, generation: u64) {
        if !self.enabled.load(Ordering::Acquire) {
            return;
        }
        let Ok(mut shard) = self.shard(&key).lock() else {
            return;
        };
        // Checked under the shard lock, which eviction also takes: an eviction of this key
        // either happened before (generation moved: not stored) or happens after (removes it).
        if self.generation.load(Ordering::Acquire) != generation {
            return;
        }
        if shard.len() >= self.per_shard {
            let drop_count = (self.per_shard / 8).max(1);
            let victims: Vec<CacheKey> = shard.keys().take(drop_count).cloned().collect();
            for victim in victims {
                shard.remove(&victim);
            }
        }
        shard.insert(key, answer);
    }

    /// Drops every answer about this certificate (all hash algorithms).
    pub(crate) fn evict(&self, ca_id: Uuid, serial: &str) {
        for hash in [HashAlgorithm::Sha1, HashAlgorithm::Sha256] {
            let key = CacheKey {
                ca_id,
                serial: serial.to_owned(),
                hash,
            };
            if let Ok(mut shard) = self.shard(&key).lock() {
                self.generation.fetch_add(1, Ordering::AcqRel);
                shard.remove(&key);
            }
        }
    }

    /// Turns the cache on (the notifications are being received) or off and empties it
    /// (they may have been missed).
    pub(crate) fn set_enabled(&self, enabled: bool) {
        if !enabled {
            self.enabled.store(false, Ordering::Release);
            self.generation.fetch_add(1, Ordering::AcqRel);
            for shard in &self.shards {
                if let Ok(mut shard) = shard.lock() {
                    shard.clear();
                }
            }
        } else if self.capacity > 0 {
            self.enabled.store(true, Ordering::Release);
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.shards
            .iter()
            .map(|s| s.lock().map(|s| s.len()).unwrap_or(0))
            .sum()
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    fn answer(now: OffsetDateTime) -> Arc<CachedAnswer> {
        Arc::new(CachedAnswer {
            cert_id_der: vec![1, 2, 3],
            der: Arc::from(vec![9u8; 4]),
            this_update: now,
            next_update: now + time::Duration::hours(1),
            fresh_until: now + time::Duration::minutes(30),
            status: CertStatus::Good,
        })
    }

    fn key(serial: &str) -> CacheKey {
        CacheKey {
            ca_id: Uuid::nil(),
            serial: serial.into(),
            hash: HashAlgorithm::Sha1,
        }
    }

    #[test]
    fn an_eviction_between_the_status_read_and_the_fill_keeps_the_old_answer_out() {
        let cache = ResponseCache::new(100);
        cache.set_enabled(true);
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        let generation = cache.generation();
        cache.evict(Uuid::nil(), "01");
        cache.put(key("01"), answer(now), generation);
        assert!(cache.get(&key("01"), &[1, 2, 3], now).is_none());
        cache.put(key("01"), answer(now), cache.generation());
        assert!(cache.get(&key("01"), &[1, 2, 3], now).is_some());
        cache.evict(Uuid::nil(), "01");
        assert!(cache.get(&key("01"), &[1, 2, 3], now).is_none());
    }

    #[test]
    fn a_disabled_cache_stores_and_serves_nothing_and_stale_or_other_encodings_miss() {
        let cache = ResponseCache::new(100);
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        cache.put(key("01"), answer(now), cache.generation());
        assert_eq!(cache.len(), 0, "off until the listener is up");
        cache.set_enabled(true);
        cache.put(key("01"), answer(now), cache.generation());
        assert!(cache.get(&key("01"), &[1, 2, 3], now).is_some());
        assert!(
            cache.get(&key("01"), &[1, 2], now).is_none(),
            "other CertID bytes"
        );
        let later = now + time::Duration::minutes(31);
        assert!(
            cache.get(&key("01"), &[1, 2, 3], later).is_none(),
            "no longer fresh"
        );
        cache.set_enabled(false);
        assert_eq!(cache.len(), 0, "emptied when notifications may be missed");
    }

    #[test]
    fn the_cache_stays_within_its_capacity() {
        let cache = ResponseCache::new(64);
        cache.set_enabled(true);
        let now = OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap();
        for i in 0..10_000 {
            cache.put(key(&format!("{i:04x}")), answer(now), cache.generation());
        }
        assert!(cache.len() <= 64 + SHARDS, "{}", cache.len());
    }
}
