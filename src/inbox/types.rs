//! The inbox's public value types: states, stored events, statistics, replay
//! selections and run reports. A leaf module: it imports no sibling.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

/// Where an event is in its life.
///
/// ```
/// use suno_callback::inbox::EventState;
///
/// assert_eq!(EventState::from_column("dead"), Some(EventState::Dead));
/// assert_eq!(EventState::Dead.as_str(), "dead");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum EventState {
    /// Stored, waiting for a worker (first run or a scheduled retry).
    Pending,
    /// Leased by a worker whose handler is running.
    Running,
    /// A handler run succeeded.
    Done,
    /// Given up on after too many attempts or too long; see [`Replay`].
    Dead,
}

impl EventState {
    /// The value of the `state` column.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Pending => "pending",
            Self::Running => "running",
            Self::Done => "done",
            Self::Dead => "dead",
        }
    }

    /// The state for a value of the `state` column.
    pub fn from_column(value: &str) -> Option<Self> {
        match value {
            "pending" => Some(Self::Pending),
            "running" => Some(Self::Running),
            "done" => Some(Self::Done),
            "dead" => Some(Self::Dead),
            _ => None,
        }
    }
}

impl fmt::Display for EventState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One row of the inbox, as [`Inbox::event`](super::Inbox::event) reads it.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct StoredEvent {
    /// The row's id.
    pub id: i64,
    /// The task id of the dedup key.
    pub task_id: String,
    /// The callback family (`music`, `wav`, …, `unknown`), as `Family::as_str` writes it.
    pub family: String,
    /// The key's stage: `callbackType` for music and lyrics, the status for voice,
    /// `""` for families without stages.
    pub stage: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The body exactly as received.
    pub body: Bytes,
    /// The state.
    pub state: EventState,
    /// How many handler runs were started.
    pub attempts: u32,
    /// The last failure's text, cut short.
    pub last_error: Option<String>,
}

impl fmt::Debug for StoredEvent {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("StoredEvent")
            .field("id", &self.id)
            .field("task_id", &self.task_id)
            .field("family", &self.family)
            .field("stage", &self.stage)
            .field("outcome", &self.outcome)
            .field("body_len", &self.body.len())
            .field("state", &self.state)
            .field("attempts", &self.attempts)
            .field("last_error", &self.last_error)
            .finish()
    }
}

/// How many events are in each state.
///
/// ```
/// use suno_callback::inbox::InboxStats;
///
/// let stats = InboxStats::default();
/// assert_eq!(stats.queue_depth(), 0);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct InboxStats {
    /// Waiting for a worker.
    pub pending: u64,
    /// Leased by a worker.
    pub running: u64,
    /// Done (until pruned).
    pub done: u64,
    /// Dead-lettered (until pruned or replayed).
    pub dead: u64,
    /// How long ago the oldest pending or running event was received.
    pub oldest_pending_age: Option<Duration>,
}

impl InboxStats {
    /// Events not finished yet: pending and running.
    pub fn queue_depth(&self) -> u64 {
        self.pending + self.running
    }
}

/// Which finished events [`Inbox::replay`](super::Inbox::replay) runs again.
///
/// ```
/// use suno_callback::inbox::Replay;
///
/// let one = Replay::Event(42);
/// let all_dead = Replay::Dead;
/// let task = Replay::Task("2fac7b1e".into());
/// # let _ = (one, all_dead, task);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Replay {
    /// One event, by id, if it is done or dead.
    Event(i64),
    /// Every dead event.
    Dead,
    /// Every done or dead event of a task.
    Task(String),
}

/// How one handler run ended, once that is stored.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum RunResult {
    /// The handler succeeded and the event is done.
    Done,
    /// The handler failed, panicked or timed out; the event runs again after this
    /// delay.
    Retry {
        /// The delay before the next run.
        after: Duration,
    },
    /// The event is dead-lettered.
    Dead,
    /// Shutdown interrupted the run; the event is pending again.
    Released,
    /// The worker lost its lease before storing the outcome (it ran too long without
    /// reaching the database); another worker may run the event again.
    LeaseLost,
}

/// What [`InboxBuilder::on_outcome`](super::InboxBuilder::on_outcome) is told after a
/// run.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct RunReport {
    /// The event's id.
    pub id: i64,
    /// Its task id.
    pub task_id: String,
    /// Its family (`music`, `wav`, …, `unknown`).
    pub family: String,
    /// Its key's stage (`""` for families without stages).
    pub stage: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// Which run this was, from 1.
    pub attempt: u32,
    /// How it ended.
    pub result: RunResult,
    /// Why it failed, cut short (for anything but [`RunResult::Done`]).
    pub error: Option<String>,
}

impl RunReport {
    /// Whether the handler run succeeded and the event is done.
    pub fn is_done(&self) -> bool {
        self.result == RunResult::Done
    }
}

/// The longest error text stored or reported for one run.
pub(crate) const MAX_ERROR_CHARS: usize = 500;

/// `text` cut to [`MAX_ERROR_CHARS`] characters.
pub(crate) fn cut_error(text: &str) -> String {
    match text.char_indices().nth(MAX_ERROR_CHARS) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text.to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_texts_are_cut_short_on_a_char_boundary() {
        let long = "é".repeat(MAX_ERROR_CHARS + 10);
        let cut = cut_error(&long);
        assert_eq!(cut.chars().count(), MAX_ERROR_CHARS + 1);
        assert_eq!(cut_error("short"), "short");
    }

    #[test]
    fn states_round_trip_through_their_column() {
        for state in [
            EventState::Pending,
            EventState::Running,
            EventState::Done,
            EventState::Dead,
        ] {
            assert_eq!(EventState::from_column(state.as_str()), Some(state));
        }
        assert_eq!(EventState::from_column("other"), None);
    }
}
