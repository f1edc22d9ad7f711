//! The only place that reads the wall clock.

use std::sync::Mutex;

use time::OffsetDateTime;

/// A source of the current time.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now(&self) -> OffsetDateTime;
}

/// The real clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    #[allow(clippy::disallowed_methods)] // The one sanctioned read of the wall clock.
    fn now(&self) -> OffsetDateTime {
        OffsetDateTime::now_utc()
    }
}

/// A clock that stands still until told otherwise; for tests and benchmarks.
#[derive(Debug)]
pub struct FixedClock(Mutex<OffsetDateTime>);

impl FixedClock {
    pub fn new(at: OffsetDateTime) -> Self {
        Self(Mutex::new(at))
    }

    pub fn set(&self, at: OffsetDateTime) {
        if let Ok(mut now) = self.0.lock() {
            *now = at;
        }
    }
}

impl Clock for FixedClock {
    fn now(&self) -> OffsetDateTime {
        self.0
            .lock()
            .map(|now| *now)
            .unwrap_or(OffsetDateTime::UNIX_EPOCH)
    }
}

/// The real clock moved by an adjustable offset: time passes as usual, and tests can jump
/// ahead (for example past a token's expiry) without waiting.
#[derive(Debug, Default)]
pub struct AdjustableClock(Mutex<time::Duration>);

impl AdjustableClock {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn advance(&self, by: time::Duration) {
        if let Ok(mut offset) = self.0.lock() {
            *offset += by;
        }
    }

    pub fn now_unix(&self) -> i64 {
        self.now().unix_timestamp()
    }
}

impl Clock for AdjustableClock {
    fn now(&self) -> OffsetDateTime {
        let offset = self.0.lock().map(|o| *o).unwrap_or_default();
        SystemClock.now() + offset
    }
}
