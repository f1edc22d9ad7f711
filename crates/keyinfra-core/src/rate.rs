//! Per-user rate limits on the requests that write certificates: issue, renew and revoke
//! (`KEYINFRA_ISSUE_RATE`), and on creating SCEP challenges, which are used, withdrawn or
//! expired and then no longer count towards their cap.
//!
//! The quota counts only ACTIVE certificates, so without a rate an account at its quota
//! could issue, revoke and issue again without end, growing the database and every CRL. A
//! token bucket per user: `burst` requests at once, refilled at `per_minute` a minute.
//! ADMINs are exempt unless `KEYINFRA_ISSUE_RATE_ADMINS` says otherwise; the operator's CLI
//! always is. The buckets are in memory, per replica (N replicas allow N times the rate),
//! like the login throttle.
//!
//! [`AddressLimiter`]: the same bucket per client address, for requests anyone may send
//! that cost the server real work before it knows who is asking (a SCEP PKIOperation: an
//! RSA decryption and an RSA signature each).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};
use uuid::Uuid;

use crate::CoreError;
use crate::principal::Principal;

/// `KEYINFRA_ISSUE_RATE`: how many certificate writes a user may make a minute.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WriteRate {
    pub per_minute: u32,
    /// Whether ADMINs are limited too.
    pub admins_too: bool,
}

impl WriteRate {
    pub const DEFAULT_PER_MINUTE: u32 = 60;
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: OffsetDateTime,
}

/// Above this many buckets, full ones are dropped (a full bucket is the same as none).
const PRUNE_ABOVE: usize = 100_000;

#[derive(Debug)]
pub struct WriteLimiter {
    rate: Option<WriteRate>,
    buckets: Mutex<HashMap<Uuid, Bucket>>,
}

impl WriteLimiter {
    /// `None`: no limit.
    pub fn new(rate: Option<WriteRate>) -> Self {
        Self {
            rate,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one write for `by`, or says how long to wait ([`CoreError::RateLimited`]).
    /// Called before any expensive work (key generation, signing, the database).
    pub fn take(&self, by: &Principal, now: OffsetDateTime) -> Result<(), CoreError> {
        let Some(rate) = self.rate else {
            return Ok(());
        };
        let Principal::User(caller) = by else {
            return Ok(());
        };
        if by.is_admin() && !rate.admins_too {
            return Ok(());
        }
        let capacity = f64::from(rate.per_minute.max(1));
        let per_second = capacity / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| b.tokens + (now - b.at).as_seconds_f64() * per_second < capacity);
        }
        let bucket = buckets.entry(caller.id).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = (now - bucket.at).as_seconds_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        metrics::counter!("keyinfra_rate_limited_total", "what" => "certificate_writes")
            .increment(1);
        let wait = ((1.0 - bucket.tokens) / per_second).ceil();
        Err(CoreError::RateLimited(Duration::seconds(wait as i64)))
    }
}

/// A token bucket per client address: `per_minute` requests at once, refilled at
/// `per_minute` a minute. IPv6 addresses count by their /64, which one host usually holds
/// whole. A request whose address is unknown (no socket address: in-process tests) is not
/// limited.
#[derive(Debug)]
pub struct AddressLimiter {
    /// `None`: no limit.
    per_minute: Option<u32>,
    /// What the metric calls it.
    what: &'static str,
    buckets: Mutex<HashMap<IpAddr, Bucket>>,
}

impl AddressLimiter {
    pub fn new(per_minute: Option<u32>, what: &'static str) -> Self {
        Self {
            per_minute,
            what,
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one request for `address`, or says how long to wait
    /// ([`CoreError::RateLimited`]). Called before any expensive work.
    pub fn take(&self, address: Option<IpAddr>, now: OffsetDateTime) -> Result<(), CoreError> {
        let (Some(per_minute), Some(address)) = (self.per_minute, address) else {
            return Ok(());
        };
        let key = match address {
            IpAddr::V6(v6) if v6.to_ipv4_mapped().is_none() => {
                let mut octets = v6.octets();
                octets[8..].fill(0);
                IpAddr::from(octets)
            }
            IpAddr::V6(v6) => IpAddr::V4(
                v6.to_ipv4_mapped()
                    .unwrap_or(std::net::Ipv4Addr::UNSPECIFIED),
            ),
            v4 => v4,
        };
        let capacity = f64::from(per_minute.max(1));
        let per_second = capacity / 60.0;
        let mut buckets = self
            .buckets
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if buckets.len() > PRUNE_ABOVE {
            buckets.retain(|_, b| b.tokens + (now - b.at).as_seconds_f64() * per_second < capacity);
        }
        let bucket = buckets.entry(key).or_insert(Bucket {
            tokens: capacity,
            at: now,
        });
        let elapsed = (now - bucket.at).as_seconds_f64().max(0.0);
        bucket.tokens = (bucket.tokens + elapsed * per_second).min(capacity);
        bucket.at = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            return Ok(());
        }
        metrics::counter!("keyinfra_rate_limited_total", "what" => self.what).increment(1);
        let wait = ((1.0 - bucket.tokens) / per_second).ceil();
        Err(CoreError::RateLimited(Duration::seconds(wait as i64)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_its_burst_then_waits_and_ipv6_counts_by_its_64() {
        let limiter = AddressLimiter::new(Some(3), "test");
        let t0 = OffsetDateTime::UNIX_EPOCH + Duration::days(20_000);
        let a: IpAddr = "192.0.2.1".parse().unwrap();
        let b: IpAddr = "192.0.2.2".parse().unwrap();
        assert!((0..3).all(|_| limiter.take(Some(a), t0).is_ok()));
        match limiter.take(Some(a), t0) {
            Err(CoreError::RateLimited(wait)) => assert_eq!(wait, Duration::seconds(20)),
            other => panic!("expected a wait, got {other:?}"),
        }
        // Another address has its own bucket; twenty seconds refill one request.
        assert!(limiter.take(Some(b), t0).is_ok());
        assert!(limiter.take(Some(a), t0 + Duration::seconds(20)).is_ok());
        assert!(limiter.take(Some(a), t0 + Duration::seconds(20)).is_err());
        // Two hosts of one /64 share a bucket; another /64 does not.
        let v6 = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!((0..3).all(|_| limiter.take(v6("2001:db8::1"), t0).is_ok()));
        assert!(limiter.take(v6("2001:db8::ffff:2"), t0).is_err());
        assert!(limiter.take(v6("2001:db8:0:1::1"), t0).is_ok());
        // No address, or no limit: never refused.
        assert!((0..10).all(|_| limiter.take(None, t0).is_ok()));
        let open = AddressLimiter::new(None, "test");
        assert!((0..10).all(|_| open.take(Some(a), t0).is_ok()));
    }
    use crate::users::Caller;
    use keyinfra_db::UserRole;

    fn user(role: UserRole) -> Principal {
        Principal::User(Caller {
            id: Uuid::from_u128(u128::from(role == UserRole::Admin) + 1),
            role,
            session_epoch: OffsetDateTime::UNIX_EPOCH,
        })
    }

    #[test]
    fn a_user_gets_the_burst_then_waits_for_the_refill() {
        let limiter = WriteLimiter::new(Some(WriteRate {
            per_minute: 3,
            admins_too: false,
        }));
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1);
        let alice = user(UserRole::User);
        for _ in 0..3 {
            limiter.take(&alice, now).unwrap();
        }
        let Err(CoreError::RateLimited(wait)) = limiter.take(&alice, now) else {
            panic!("the fourth write within a minute must be refused");
        };
        assert_eq!(wait, Duration::seconds(20));
        assert!(limiter.take(&alice, now + Duration::seconds(19)).is_err());
        limiter.take(&alice, now + Duration::seconds(40)).unwrap();
        // Admins and the operator are exempt by default; with admins_too they are not.
        for _ in 0..10 {
            limiter.take(&user(UserRole::Admin), now).unwrap();
            limiter.take(&Principal::Operator, now).unwrap();
        }
        let strict = WriteLimiter::new(Some(WriteRate {
            per_minute: 1,
            admins_too: true,
        }));
        strict.take(&user(UserRole::Admin), now).unwrap();
        assert!(strict.take(&user(UserRole::Admin), now).is_err());
        assert!(WriteLimiter::new(None).take(&alice, now).is_ok());
    }
}
