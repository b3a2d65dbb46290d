//! What the end of a run makes of its event: a pure function of how the run ended,
//! which attempt it was and how old the event is, naming each transition. It imports
//! nothing but the retry policy.

use std::time::Duration;

use crate::inbox::retry::RetryPolicy;

/// How a run ended, or why it never started.
#[derive(Debug)]
pub(crate) enum Ending {
    /// The handler succeeded, or no handler takes the event (it is done, as inline
    /// mode answers `ignored`).
    Succeeded,
    /// The handler failed, panicked or timed out.
    Failed,
    /// Shutdown dropped the handler before it finished.
    Interrupted,
    /// The stored body is not a callback: no run can succeed.
    Unreadable,
    /// Runs that never stored an outcome (their process died) used up the attempts
    /// before this one started.
    OutOfAttempts,
}

/// What the worker stores for an event once its run has ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Transition {
    /// The event is done.
    Done,
    /// The event runs again after this delay.
    RetryAfter(Duration),
    /// The event is dead-lettered.
    Dead,
    /// The event goes back to pending at once, this attempt not counted.
    Release,
}

/// The limits of an inbox's retries.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Limits {
    pub(crate) max_attempts: u32,
    pub(crate) max_age: Duration,
    pub(crate) retry: RetryPolicy,
}

/// The transition for a run of `attempt` (from 1) of an event received `age` ago.
/// `jitter` is a random number for the retry delay. `max_age` bounds the retries of
/// failures only: an event runs at least once however old it is.
pub(crate) fn decide(
    ending: &Ending,
    attempt: u32,
    age: Duration,
    limits: &Limits,
    jitter: u64,
) -> Transition {
    match ending {
        Ending::Succeeded => Transition::Done,
        Ending::Interrupted => Transition::Release,
        Ending::Unreadable | Ending::OutOfAttempts => Transition::Dead,
        Ending::Failed if attempt >= limits.max_attempts || age >= limits.max_age => {
            Transition::Dead
        }
        Ending::Failed => Transition::RetryAfter(limits.retry.delay_with(attempt, jitter)),
    }
}

/// Whether `attempt` may start: runs that died before storing an outcome count too,
/// so an event that kills its process every time ends dead instead of looping.
pub(crate) fn may_start(attempt: u32, limits: &Limits) -> bool {
    attempt <= limits.max_attempts
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> Limits {
        Limits {
            max_attempts: 3,
            max_age: Duration::from_secs(60),
            retry: RetryPolicy::default(),
        }
    }

    #[test]
    fn each_ending_names_its_transition() {
        let young = Duration::from_secs(1);
        assert_eq!(
            decide(&Ending::Succeeded, 1, young, &limits(), 0),
            Transition::Done
        );
        assert_eq!(
            decide(&Ending::Interrupted, 3, young, &limits(), 0),
            Transition::Release
        );
        assert_eq!(
            decide(&Ending::Unreadable, 1, young, &limits(), 0),
            Transition::Dead
        );
        assert_eq!(
            decide(&Ending::OutOfAttempts, 4, young, &limits(), 0),
            Transition::Dead
        );
        assert_eq!(
            decide(&Ending::Failed, 2, young, &limits(), 0),
            Transition::RetryAfter(Duration::from_secs(1))
        );
        assert_eq!(
            decide(&Ending::Failed, 3, young, &limits(), 0),
            Transition::Dead
        );
    }

    #[test]
    fn age_bounds_retries_of_failures_only() {
        let old = Duration::from_secs(3600);
        assert_eq!(
            decide(&Ending::Succeeded, 1, old, &limits(), 0),
            Transition::Done
        );
        assert_eq!(
            decide(&Ending::Failed, 1, old, &limits(), 0),
            Transition::Dead
        );
        assert_eq!(
            decide(&Ending::Interrupted, 1, old, &limits(), 0),
            Transition::Release
        );
        // However old, the first run (and the first after a replay) starts.
        assert!(may_start(1, &limits()));
        assert!(may_start(3, &limits()));
        assert!(!may_start(4, &limits()));
    }
}
