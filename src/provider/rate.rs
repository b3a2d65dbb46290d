//! The client's request rate: a global rate the user sets, and at most three requests
//! per second for any one task (the provider's published limit).
//!
//! Both are the same small scheduler (the "generic cell rate algorithm" with no burst):
//! each request reserves the next free slot, at least one interval after the previous
//! one, and sleeps until it. Reserving before sleeping keeps it fair and never spins.
//! A crate such as `governor` does this too, but brings a dozen dependencies for two
//! counters; this needs a mutex and a map.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

/// The per-task limit: 3 per second, so one every 334 ms (rounded up).
pub(crate) const PER_TASK_INTERVAL: Duration = Duration::from_millis(334);
/// Above this many remembered tasks, the ones whose slot has passed are forgotten.
const PRUNE_ABOVE: usize = 1024;

#[derive(Debug)]
pub(crate) struct RateLimiter {
    global_interval: Duration,
    global_next: Mutex<Option<Instant>>,
    per_task_interval: Duration,
    per_task_next: Mutex<HashMap<String, Instant>>,
}

impl RateLimiter {
    /// `per_second` requests per second in all (at least one request per hour), and
    /// `per_task_interval` between two requests about one task.
    pub(crate) fn new(per_second: f64, per_task_interval: Duration) -> Self {
        let global_interval = Duration::try_from_secs_f64(1.0 / per_second)
            .unwrap_or(Duration::ZERO)
            .min(Duration::from_secs(3600));
        Self {
            global_interval,
            global_next: Mutex::new(None),
            per_task_interval,
            per_task_next: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the task's next slot and then for the next global slot.
    pub(crate) async fn acquire(&self, task_id: &str) {
        let task_slot = self.reserve_task(task_id);
        sleep_until(task_slot).await;
        let global_slot = self.reserve_global();
        sleep_until(global_slot).await;
    }

    /// Waits for the next global slot (a request about no one task).
    pub(crate) async fn acquire_global(&self) {
        let global_slot = self.reserve_global();
        sleep_until(global_slot).await;
    }

    fn reserve_global(&self) -> Instant {
        let now = Instant::now();
        let mut next = self
            .global_next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let slot = next.map_or(now, |next| next.max(now));
        *next = Some(slot + self.global_interval);
        slot
    }

    fn reserve_task(&self, task_id: &str) -> Instant {
        let now = Instant::now();
        let mut map = self
            .per_task_next
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, next| *next > now);
        }
        let slot = map.get(task_id).map_or(now, |next| (*next).max(now));
        map.insert(task_id.to_owned(), slot + self.per_task_interval);
        slot
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn one_task_gets_at_most_three_requests_a_second() {
        let limiter = RateLimiter::new(1000.0, PER_TASK_INTERVAL);
        let start = Instant::now();
        let mut within_a_second = 0;
        for _ in 0..10 {
            limiter.acquire("t1").await;
            if start.elapsed() < Duration::from_secs(1) {
                within_a_second += 1;
            }
        }
        assert_eq!(within_a_second, 3);
    }

    #[tokio::test(start_paused = true)]
    async fn the_global_rate_spaces_different_tasks() {
        let limiter = RateLimiter::new(2.0, PER_TASK_INTERVAL);
        let start = Instant::now();
        let mut within_a_second = 0;
        for n in 0..6 {
            limiter.acquire(&format!("t{n}")).await;
            if start.elapsed() < Duration::from_secs(1) {
                within_a_second += 1;
            }
        }
        assert_eq!(within_a_second, 2);
    }
}
