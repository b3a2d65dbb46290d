//! The rows the inbox writes and reads, and the time columns' units. A leaf module: it
//! imports no sibling but the public value types.

use std::time::Duration;

use bytes::Bytes;

use super::types::{EventState, StoredEvent};
use crate::store::DedupKey;

/// The row stage 4 inserts. The unique key is `(task_id, family, stage, outcome)`.
#[derive(Debug)]
pub(crate) struct NewEvent<'a> {
    pub(crate) task_id: &'a str,
    pub(crate) family: &'a str,
    pub(crate) stage: &'a str,
    pub(crate) outcome: &'a str,
    pub(crate) body: &'a [u8],
}

impl<'a> NewEvent<'a> {
    /// The one place that maps a dedup key to the inbox's key columns: one column per
    /// part of the key. The family column keeps the family a per-family path named, so
    /// the worker types the stored body as that family.
    pub(crate) fn from_key(key: &'a DedupKey, body: &'a Bytes) -> Self {
        Self {
            task_id: key.task_id(),
            family: key.family().as_str(),
            stage: key.stage(),
            outcome: key.outcome().as_str(),
            body,
        }
    }
}

/// An event a worker has leased.
#[derive(Debug)]
pub(crate) struct Leased {
    pub(crate) id: i64,
    pub(crate) task_id: String,
    pub(crate) family: String,
    pub(crate) stage: String,
    /// `success` or `failure`.
    pub(crate) outcome: String,
    pub(crate) body: Bytes,
    /// This run's number, from 1.
    pub(crate) attempt: u32,
    /// How long ago the event was received.
    pub(crate) age: Duration,
}

/// The longest duration written to a time column: about 146 million years, so that a
/// time plus a duration never overflows a 64-bit column.
const MAX_MILLIS: i64 = i64::MAX / 4;

/// A duration in whole milliseconds, for the time columns.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).map_or(MAX_MILLIS, |ms| ms.min(MAX_MILLIS))
}

/// A column's millisecond count as a duration (negative counts as zero).
pub(crate) fn from_millis(millis: i64) -> Duration {
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
}

/// A run's number from the `attempts` column.
pub(crate) fn attempt(attempts: i64) -> u32 {
    u32::try_from(attempts).unwrap_or(u32::MAX)
}

/// Builds a [`StoredEvent`] from its columns.
#[allow(clippy::too_many_arguments)]
pub(crate) fn stored_event(
    id: i64,
    task_id: String,
    family: String,
    stage: String,
    outcome: String,
    body: Vec<u8>,
    state: &str,
    attempts: i64,
    last_error: Option<String>,
) -> StoredEvent {
    StoredEvent {
        id,
        task_id,
        family,
        stage,
        outcome,
        body: Bytes::from(body),
        state: EventState::from_column(state).unwrap_or(EventState::Pending),
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_saturate_well_below_overflow() {
        assert_eq!(millis(Duration::from_millis(1500)), 1500);
        assert_eq!(millis(Duration::MAX), MAX_MILLIS);
        assert!(MAX_MILLIS.checked_add(MAX_MILLIS).is_some());
        assert_eq!(from_millis(-5), Duration::ZERO);
        assert_eq!(attempt(-1), u32::MAX);
    }
}
