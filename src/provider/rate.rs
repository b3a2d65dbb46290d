//! The client's request rate: a global rate the user sets, and at most three requests
//! per second for any one task (the provider's published limit).
//!
//! Both are the same small scheduler (the "generic cell rate algorithm" with no burst):
//! each request reserves the next free slot, at least one interval after the previous
//! one, and sleeps until it. Reserving before sleeping keeps it fair and never spins.
//! A request dropped while it waits (its caller timed out, its sender hung up) gives
//! its slot back: the next request takes it, so waits that were abandoned never push
//! later requests into the future. A task's slot is reserved before a global one, so a
//! task waiting for its own slot holds none of the others'.
//! A crate such as `governor` does this too, but brings a dozen dependencies for two
//! counters; this needs a mutex and a map.

use std::collections::{BTreeSet, HashMap};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use tokio::time::{Instant, sleep_until};

/// The per-task limit: 3 per second, so one every 334 ms (rounded up).
pub(crate) const PER_TASK_INTERVAL: Duration = Duration::from_millis(334);
/// Above this many remembered tasks, the ones whose slot has passed are forgotten.
const PRUNE_ABOVE: usize = 1024;

/// One scheduler's slots: the next free one after those reserved, and the slots given
/// back before their time (taken first by the next reservations).
#[derive(Debug, Default)]
struct Slots {
    next: Option<Instant>,
    given_back: BTreeSet<Instant>,
}

impl Slots {
    fn reserve(&mut self, now: Instant, interval: Duration) -> Instant {
        // A slot given back and already past cannot be used without crowding the next.
        while self.given_back.first().is_some_and(|slot| *slot < now) {
            self.given_back.pop_first();
        }
        if let Some(slot) = self.given_back.pop_first() {
            return slot;
        }
        let slot = self.next.map_or(now, |next| next.max(now));
        self.next = Some(slot + interval);
        slot
    }

    /// Gives back `slot`, reserved but not used: the last one moves `next` back (with
    /// the given-back slots just before it), another is kept for the next reservation.
    fn give_back(&mut self, slot: Instant, now: Instant, interval: Duration) {
        if slot <= now {
            // Its time has come: spent, whether it was used or not.
            return;
        }
        if self.next == Some(slot + interval) {
            self.next = Some(slot);
            while let Some(last) = self.given_back.last().copied() {
                if self.next != Some(last + interval) {
                    break;
                }
                self.given_back.pop_last();
                self.next = Some(last);
            }
        } else {
            self.given_back.insert(slot);
        }
    }

    /// Whether nothing is reserved from `now` on.
    fn idle(&self, now: Instant) -> bool {
        self.next.is_none_or(|next| next <= now) && self.given_back.is_empty()
    }
}

#[derive(Debug)]
pub(crate) struct RateLimiter {
    global_interval: Duration,
    global: Mutex<Slots>,
    per_task_interval: Duration,
    per_task: Mutex<HashMap<String, Slots>>,
}

/// A reserved slot; dropped before it is used, it is given back.
struct Reservation<'a> {
    limiter: &'a RateLimiter,
    /// The task whose slot it is; `None` for a global slot.
    task_id: Option<&'a str>,
    slot: Instant,
    used: bool,
}

impl Reservation<'_> {
    async fn wait(mut self) {
        sleep_until(self.slot).await;
        self.used = true;
    }
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        if self.used {
            return;
        }
        let now = Instant::now();
        match self.task_id {
            None => {
                lock(&self.limiter.global).give_back(self.slot, now, self.limiter.global_interval)
            }
            Some(task_id) => {
                if let Some(slots) = lock(&self.limiter.per_task).get_mut(task_id) {
                    slots.give_back(self.slot, now, self.limiter.per_task_interval);
                }
            }
        }
    }
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
            global: Mutex::new(Slots::default()),
            per_task_interval,
            per_task: Mutex::new(HashMap::new()),
        }
    }

    /// Waits for the task's next slot and then for the next global slot. Dropped while
    /// it waits, it gives back the slot it waits for.
    pub(crate) async fn acquire(&self, task_id: &str) {
        self.reserve_task(task_id).wait().await;
        self.reserve_global().wait().await;
    }

    /// Waits for the next global slot (a request about no one task). Dropped while it
    /// waits, it gives the slot back.
    pub(crate) async fn acquire_global(&self) {
        self.reserve_global().wait().await;
    }

    fn reserve_global(&self) -> Reservation<'_> {
        let slot = lock(&self.global).reserve(Instant::now(), self.global_interval);
        Reservation {
            limiter: self,
            task_id: None,
            slot,
            used: false,
        }
    }

    fn reserve_task<'a>(&'a self, task_id: &'a str) -> Reservation<'a> {
        let now = Instant::now();
        let mut map = lock(&self.per_task);
        if map.len() > PRUNE_ABOVE {
            map.retain(|_, slots| !slots.idle(now));
        }
        let slot = map
            .entry(task_id.to_owned())
            .or_default()
            .reserve(now, self.per_task_interval);
        Reservation {
            limiter: self,
            task_id: Some(task_id),
            slot,
            used: false,
        }
    }
}

/// The guarded slots are plain data, consistent after any panic.
fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
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

    /// Waits dropped before their slot give it back: they used to keep it, so 100
    /// abandoned waits put the next request 33 s into the future.
    #[tokio::test(start_paused = true)]
    async fn abandoned_waits_give_their_slots_back() {
        let limiter = RateLimiter::new(2.0, PER_TASK_INTERVAL);
        for n in 0..100 {
            let task = if n % 2 == 0 { "replayed" } else { "other" };
            let wait = tokio::time::timeout(Duration::from_millis(1), limiter.acquire(task));
            let _ = wait.await;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
        let start = Instant::now();
        limiter.acquire("replayed").await;
        limiter.acquire("third").await;
        assert!(
            start.elapsed() <= Duration::from_millis(500),
            "waited {:?} after abandoned waits",
            start.elapsed()
        );
    }

    #[test]
    fn slots_given_back_are_taken_first() {
        let now = Instant::now();
        let second = Duration::from_secs(1);
        let mut slots = Slots::default();
        let reserved: Vec<Instant> = (0..4).map(|_| slots.reserve(now, second)).collect();
        assert_eq!(reserved[3], now + 3 * second);
        // A middle one comes back: the next reservation takes it.
        slots.give_back(reserved[1], now, second);
        assert_eq!(slots.reserve(now, second), reserved[1]);
        // The last ones come back: `next` moves back over them.
        slots.give_back(reserved[2], now, second);
        slots.give_back(reserved[3], now, second);
        assert_eq!(slots.next, Some(reserved[2]));
        assert!(slots.given_back.is_empty());
        // A slot whose time has come is spent.
        slots.give_back(now, now, second);
        assert!(slots.given_back.is_empty());
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
