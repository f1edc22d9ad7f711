//! Brute-force protection for logins and password changes, designed so that a stranger can
//! slow an attack down but cannot lock a named account out.
//!
//! Three counters, each with exponential back-off once its free failures are spent (1 s,
//! 2 s, 4 s, ... up to [`MAX_DELAY`]); failures older than [`WINDOW`] are forgotten:
//!
//! | counter | free failures | what it stops |
//! |---|---|---|
//! | (username, address) | [`PAIR_FREE`] | guessing one account's password from one place |
//! | address | [`ADDRESS_FREE`] | spraying many usernames from one place |
//! | username, over every address | [`USER_FREE`] | a slow guess of one account spread over many addresses |
//!
//! A pair that has logged in successfully within [`KNOWN_FOR`] is *known*: the address and
//! username counters neither apply to it nor count its failures. So failures for dave from
//! elsewhere, or a username spray from dave's own NAT, never stop dave where he logged in
//! before; only the (dave, that address) counter can, and only an attacker at that same
//! address can fill it. IPv6 addresses count by their /64, which one host usually holds
//! whole.
//!
//! Every attempt is *reserved* atomically before the password is checked, and counted as a
//! failure unless it proves the password ([`Attempt::succeeded`]); concurrent guesses cannot
//! all pass the check before any of them is recorded. A success clears only the pair it
//! proved and takes back its own reservation from the other counters; it never clears what
//! others did from the same address.
//!
//! The state is in memory, per replica: with N replicas behind a load balancer an attacker
//! gets at most N times the attempts, each still paying the Argon2id cost, and a restart
//! forgets the counters. That is the trade for needing no shared store (documented in
//! docs/security.md).

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::Mutex;

use time::{Duration, OffsetDateTime};

/// Failures allowed per (username, address) before back-off starts.
pub const PAIR_FREE: u32 = 5;
/// Failures allowed per address, over all usernames, before back-off starts.
pub const ADDRESS_FREE: u32 = 20;
/// Failures allowed per username from addresses it has not logged in from.
pub const USER_FREE: u32 = 100;
/// Longest wait.
pub const MAX_DELAY: Duration = Duration::minutes(15);
/// Failures older than this are forgotten.
pub const WINDOW: Duration = Duration::hours(1);
/// How long a successful (username, address) pair stays exempt from the wider counters.
pub const KNOWN_FOR: Duration = Duration::days(30);
/// Above this many records of one kind, stale ones are dropped before adding more.
const PRUNE_ABOVE: usize = 100_000;

#[derive(Debug, Clone, Copy)]
struct Record {
    failures: u32,
    last_failure: OffsetDateTime,
}

impl Record {
    fn wait(&self, free: u32, now: OffsetDateTime) -> Duration {
        if now - self.last_failure > WINDOW || self.failures < free {
            return Duration::ZERO;
        }
        let exponent = (self.failures - free).min(20);
        let until = self.last_failure + Duration::seconds(1i64 << exponent).min(MAX_DELAY);
        (until - now).max(Duration::ZERO)
    }
}

/// The address as counted: IPv4 whole, IPv6 by its /64. `None` (no socket address, as in
/// in-process callers) counts as one address of its own.
#[derive(Debug, Hash, PartialEq, Eq, Clone, Copy)]
struct Origin(Option<IpAddr>);

impl Origin {
    fn of(address: Option<IpAddr>) -> Self {
        Self(address.map(|a| match a.to_canonical() {
            IpAddr::V6(v6) => {
                let bits = u128::from(v6) & !((1u128 << 64) - 1);
                IpAddr::V6(bits.into())
            }
            v4 => v4,
        }))
    }
}

type Pair = (String, Origin);

#[derive(Debug, Default)]
struct State {
    pairs: HashMap<Pair, Record>,
    addresses: HashMap<Origin, Record>,
    users: HashMap<String, Record>,
    known: HashMap<Pair, OffsetDateTime>,
}

fn bump<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Record>, key: K, now: OffsetDateTime) {
    if map.len() > PRUNE_ABOVE {
        map.retain(|_, r| now - r.last_failure <= WINDOW);
    }
    let record = map.entry(key).or_insert(Record {
        failures: 0,
        last_failure: now,
    });
    if now - record.last_failure > WINDOW {
        record.failures = 0;
    }
    record.failures = record.failures.saturating_add(1);
    record.last_failure = now;
}

fn take_back<K: std::hash::Hash + Eq>(map: &mut HashMap<K, Record>, key: &K) {
    if let Some(record) = map.get_mut(key) {
        record.failures = record.failures.saturating_sub(1);
        if record.failures == 0 {
            map.remove(key);
        }
    }
}

#[derive(Debug, Default)]
pub struct LoginThrottle {
    state: Mutex<State>,
}

/// A reserved attempt. Dropped without [`Attempt::succeeded`], it stays counted as a
/// failure, whatever ended it (wrong password, unknown user, an error on the way).
#[derive(Debug)]
pub struct Attempt<'a> {
    throttle: &'a LoginThrottle,
    pair: Pair,
    /// Whether the address and username counters were charged (the pair was not known).
    charged_wider: bool,
    now: OffsetDateTime,
}

impl Attempt<'_> {
    /// The password was right: clear the pair, take back the reservation on the wider
    /// counters, and remember the pair as known.
    pub fn succeeded(self) {
        let Ok(mut state) = self.throttle.state.lock() else {
            return;
        };
        state.pairs.remove(&self.pair);
        if self.charged_wider {
            take_back(&mut state.addresses, &self.pair.1);
            take_back(&mut state.users, &self.pair.0);
        }
        if state.known.len() > PRUNE_ABOVE {
            let now = self.now;
            state.known.retain(|_, at| now - *at <= KNOWN_FOR);
        }
        state.known.insert(self.pair.clone(), self.now);
    }
}

impl LoginThrottle {
    pub fn new() -> Self {
        Self::default()
    }

    fn username_key(username: &str) -> String {
        // Usernames are at most 128 characters; longer input cannot match one, and is cut
        // so that a flood of long names cannot grow the maps by its length.
        username
            .chars()
            .take(128)
            .collect::<String>()
            .to_lowercase()
    }

    /// Reserves an attempt for `username` from `address`, or says how long it must wait.
    /// The reservation counts as a failure until [`Attempt::succeeded`].
    pub fn reserve(
        &self,
        username: &str,
        address: Option<IpAddr>,
        now: OffsetDateTime,
    ) -> Result<Attempt<'_>, Duration> {
        let user = Self::username_key(username);
        let origin = Origin::of(address);
        let pair = (user.clone(), origin);
        // A poisoned lock means a panic elsewhere while holding it; refusing every login
        // would turn that into an outage, so the state is used as it was left.
        let mut state = self
            .state
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let known = state
            .known
            .get(&pair)
            .is_some_and(|at| now - *at <= KNOWN_FOR);
        let mut wait = state
            .pairs
            .get(&pair)
            .map_or(Duration::ZERO, |r| r.wait(PAIR_FREE, now));
        if !known {
            if let Some(r) = state.addresses.get(&origin) {
                wait = wait.max(r.wait(ADDRESS_FREE, now));
            }
            if let Some(r) = state.users.get(&user) {
                wait = wait.max(r.wait(USER_FREE, now));
            }
        }
        if wait > Duration::ZERO {
            return Err(wait);
        }
        bump(&mut state.pairs, pair.clone(), now);
        if !known {
            bump(&mut state.addresses, origin, now);
            bump(&mut state.users, user, now);
        }
        Ok(Attempt {
            throttle: self,
            pair,
            charged_wider: !known,
            now,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(seconds: i64) -> OffsetDateTime {
        OffsetDateTime::UNIX_EPOCH + Duration::days(1000) + Duration::seconds(seconds)
    }

    fn ip(text: &str) -> Option<IpAddr> {
        Some(text.parse().unwrap())
    }

    /// `n` failed attempts (each reserved and dropped) at time `t`.
    fn fail(t: &LoginThrottle, user: &str, address: Option<IpAddr>, n: u32, now: OffsetDateTime) {
        for _ in 0..n {
            drop(t.reserve(user, address, now).expect("not throttled yet"));
        }
    }

    #[test]
    fn a_pair_backs_off_after_its_free_failures_and_reservations_count_at_once() {
        let t = LoginThrottle::new();
        // Reservations held at the same time (concurrent requests) count before any ends.
        let held: Vec<_> = (0..PAIR_FREE)
            .map(|_| t.reserve("Alice", ip("192.0.2.7"), at(0)).unwrap())
            .collect();
        assert_eq!(
            t.reserve("alice", ip("192.0.2.7"), at(0)).unwrap_err(),
            Duration::seconds(1)
        );
        drop(held);
        drop(t.reserve("alice", ip("192.0.2.7"), at(1)).unwrap());
        assert_eq!(
            t.reserve("alice", ip("192.0.2.7"), at(1)).unwrap_err(),
            Duration::seconds(2)
        );
        assert!(t.reserve("alice", ip("192.0.2.7"), at(3)).is_ok());
    }

    #[test]
    fn failures_for_a_user_elsewhere_do_not_lock_the_user_out() {
        let t = LoginThrottle::new();
        fail(&t, "dave", ip("198.51.100.1"), PAIR_FREE, at(0));
        assert!(t.reserve("dave", ip("198.51.100.1"), at(0)).is_err());
        assert!(t.reserve("dave", ip("203.0.113.9"), at(0)).is_ok());
    }

    #[test]
    fn a_success_clears_its_pair_only_not_the_address() {
        let t = LoginThrottle::new();
        let nat = ip("192.0.2.50");
        for i in 0..ADDRESS_FREE - 1 {
            fail(&t, &format!("random{i}"), nat, 1, at(0));
        }
        t.reserve("mallory", nat, at(0)).unwrap().succeeded();
        // The attacker's own success did not wipe the spray: one more failure spends the
        // address's free failures, and the next stranger from there waits.
        fail(&t, "random-last", nat, 1, at(0));
        assert!(t.reserve("random-next", nat, at(0)).is_err());
        // ...but mallory's own pair is known and still gets in.
        assert!(t.reserve("mallory", nat, at(0)).is_ok());
    }

    #[test]
    fn a_spray_from_a_shared_address_spares_users_known_there() {
        let t = LoginThrottle::new();
        let nat = ip("192.0.2.60");
        t.reserve("carol", nat, at(0)).unwrap().succeeded();
        for i in 0..ADDRESS_FREE * 2 {
            let _ = t.reserve(&format!("random{i}"), nat, at(1));
        }
        assert!(t.reserve("newcomer", nat, at(1)).is_err());
        assert!(t.reserve("carol", nat, at(1)).is_ok());
    }

    #[test]
    fn the_username_limit_over_all_addresses_spares_known_addresses() {
        let t = LoginThrottle::new();
        t.reserve("erin", ip("10.0.0.1"), at(0))
            .unwrap()
            .succeeded();
        for i in 0..USER_FREE {
            fail(
                &t,
                "erin",
                ip(&format!("10.1.{}.{}", i / 200, i % 200)),
                1,
                at(0),
            );
        }
        assert!(t.reserve("erin", ip("10.9.9.9"), at(0)).is_err());
        assert!(t.reserve("erin", ip("10.0.0.1"), at(0)).is_ok());
    }

    #[test]
    fn ipv6_counts_by_its_64_and_the_delay_is_capped_and_forgotten() {
        let t = LoginThrottle::new();
        fail(&t, "frank", ip("2001:db8::1"), PAIR_FREE, at(0));
        assert!(t.reserve("frank", ip("2001:db8::ffff"), at(0)).is_err());
        assert!(t.reserve("frank", ip("2001:db8:0:1::1"), at(0)).is_ok());
        let record = Record {
            failures: 60,
            last_failure: at(0),
        };
        assert_eq!(record.wait(PAIR_FREE, at(0)), MAX_DELAY);
        assert_eq!(
            record.wait(PAIR_FREE, at(0) + WINDOW + Duration::SECOND),
            Duration::ZERO
        );
    }
}
