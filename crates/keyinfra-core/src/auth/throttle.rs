//! Brute-force protection for logins: exponential back-off per username and per client
//! address.
//!
//! After [`LoginThrottle::FREE_FAILURES`] failures within the window, each further attempt
//! for that key must wait 1 s, 2 s, 4 s, ... up to [`LoginThrottle::MAX_DELAY`]; an attempt
//! during the wait is answered 429 with Retry-After without checking the password. A
//! successful login clears the username's record and the address's record.
//!
//! The state is in memory, per replica: with N replicas behind a load balancer an attacker
//! gets at most N times the attempts, each still paying the Argon2id cost, and a restart
//! forgets the counters. That is the trade for needing no shared store; a shared limit would
//! go into PostgreSQL (documented in ARCHITECTURE.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: OffsetDateTime,
}

#[derive(Debug, Hash, PartialEq, Eq, Clone)]
enum Key {
    User(String),
    Address(IpAddr),
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    records: Mutex<HashMap<Key, Record>>,
}

impl LoginThrottle {
    /// Failures allowed before back-off starts.
    pub const FREE_FAILURES: u32 = 5;
    /// Longest wait.
    pub const MAX_DELAY: Duration = Duration::minutes(15);
    /// Failures older than this are forgotten.
    pub const WINDOW: Duration = Duration::hours(1);
    /// An address may fail more often than a username (a NAT hides many users).
    const ADDRESS_FACTOR: u32 = 4;

    pub fn new() -> Self {
        Self::default()
    }

    fn keys(username: &str, address: Option<IpAddr>) -> Vec<Key> {
        let mut keys = vec![Key::User(username.to_lowercase())];
        keys.extend(address.map(Key::Address));
        keys
    }

    fn delay(record: &Record, free: u32) -> Duration {
        if record.failures < free {
            return Duration::ZERO;
        }
        let exponent = (record.failures - free).min(20);
        Duration::seconds(1i64 << exponent).min(Self::MAX_DELAY)
    }

    /// How long this attempt must still wait; `None` when it may go ahead.
    pub fn check(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Option<Duration> {
        let Ok(mut records) = self.records.lock() else {
            return None;
        };
        let mut wait = Duration::ZERO;
        for key in Self::keys(username, address) {
            let free = match key {
                Key::User(_) => Self::FREE_FAILURES,
                Key::Address(_) => Self::FREE_FAILURES * Self::ADDRESS_FACTOR,
            };
            if let Some(record) = records.get(&key) {
                if now - record.last_failure > Self::WINDOW {
                    records.remove(&key);
                    continue;
                }
                let until = record.last_failure + Self::delay(record, free);
                if until > now {
                    wait = wait.max(until - now);
                }
            }
        }
        (wait > Duration::ZERO).then_some(wait)
    }

    pub fn record_failure(&self, username: &str, address: Option<IpAddr>, now: OffsetDateTime) {
        let Ok(mut records) = self.records.lock() else {
            return;
        };
        // Bound memory under a spray of random usernames: forget stale records first.
        if records.len() > 100_000 {
            records.retain(|_, r| now - r.last_failure <= Self::WINDOW);
        }
        for key in Self::keys(username, address) {
            let record = records.entry(key).or_insert(Record {
                failures: 0,
                last_failure: now,
            });
            record.failures = record.failures.saturating_add(1);
            record.last_failure = now;
        }
    }

    pub fn record_success(&self, username: &str, address: Option<IpAddr>) {
        if let Ok(mut records) = self.records.lock() {
            for key in Self::keys(username, address) {
                records.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backs_off_after_free_failures_and_success_resets() {
        let t = LoginThrottle::new();
        let now = OffsetDateTime::UNIX_EPOCH + Duration::days(1000);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        for _ in 0..LoginThrottle::FREE_FAILURES {
            assert_eq!(t.check("Alice", Some(ip), now), None);
            t.record_failure("Alice", Some(ip), now);
        }
        assert_eq!(t.check("alice", None, now), Some(Duration::seconds(1)));
        t.record_failure("alice", Some(ip), now + Duration::seconds(1));
        assert_eq!(
            t.check("alice", None, now + Duration::seconds(1)),
            Some(Duration::seconds(2))
        );
        assert_eq!(t.check("alice", None, now + Duration::seconds(3)), None);
        // Another name from the same address is not yet limited (the address allows more).
        assert_eq!(t.check("bob", Some(ip), now + Duration::seconds(1)), None);
        t.record_success("alice", Some(ip));
        assert_eq!(t.check("alice", Some(ip), now + Duration::seconds(1)), None);
    }

    #[test]
    fn the_delay_is_capped() {
        let record = Record {
            failures: 60,
            last_failure: OffsetDateTime::UNIX_EPOCH,
        };
        assert_eq!(LoginThrottle::delay(&record, 5), LoginThrottle::MAX_DELAY);
    }
}
