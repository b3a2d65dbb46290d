//! Where verifiers get the current time from, so tests can set it.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// A source of the current Unix time in seconds.
///
/// Implemented for [`SystemClock`], [`ManualClock`] and any `Fn() -> i64` closure.
///
/// ```
/// use suno_callback::verify::Clock;
///
/// let frozen = || 1_700_000_000_i64;
/// assert_eq!(frozen.unix_seconds(), 1_700_000_000);
/// ```
pub trait Clock: Send + Sync + 'static {
    /// Seconds since the Unix epoch.
    fn unix_seconds(&self) -> i64;
}

/// The system's wall clock.
#[derive(Clone, Copy, Debug, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn unix_seconds(&self) -> i64 {
        match SystemTime::now().duration_since(UNIX_EPOCH) {
            Ok(since) => i64::try_from(since.as_secs()).unwrap_or(i64::MAX),
            Err(before) => i64::try_from(before.duration().as_secs()).map_or(i64::MIN, |s| -s),
        }
    }
}

/// A clock that only moves when told to. Clones share one time, so a test can keep a
/// handle and move the clock that a verifier reads.
///
/// ```
/// use suno_callback::verify::{Clock, ManualClock};
///
/// let clock = ManualClock::new(1_700_000_000);
/// let handle = clock.clone();
/// handle.advance(301);
/// assert_eq!(clock.unix_seconds(), 1_700_000_301);
/// ```
#[derive(Clone, Debug)]
pub struct ManualClock {
    now: Arc<AtomicI64>,
}

impl ManualClock {
    /// A clock reading `unix_seconds`.
    pub fn new(unix_seconds: i64) -> Self {
        Self {
            now: Arc::new(AtomicI64::new(unix_seconds)),
        }
    }

    /// Sets the time.
    pub fn set(&self, unix_seconds: i64) {
        self.now.store(unix_seconds, Ordering::SeqCst);
    }

    /// Moves the time by `seconds` (negative moves it back).
    pub fn advance(&self, seconds: i64) {
        self.now.fetch_add(seconds, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn unix_seconds(&self) -> i64 {
        self.now.load(Ordering::SeqCst)
    }
}

impl<F> Clock for F
where
    F: Fn() -> i64 + Send + Sync + 'static,
{
    fn unix_seconds(&self) -> i64 {
        self()
    }
}
