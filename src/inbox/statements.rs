//! The inbox's statements, one table per backend (`sqlite.rs`, `postgres.rs`), for the
//! one body in `backend.rs`. It imports nothing but the migrations' type.
//!
//! Every statement takes the same parameters, in the same order, on both backends,
//! except the clock: a statement that needs the time takes it from the database
//! server on PostgreSQL (the replicas' clocks need not agree) and as one more
//! parameter, after all the others, on SQLite (bound from this process's clock).
//! Integer columns are read as 64-bit on both.

use super::migrate::Migration;

/// The inbox's statements in one backend's syntax.
#[derive(Debug)]
pub(crate) struct Statements {
    /// The backend's migrations, oldest first.
    pub(crate) migrations: &'static [Migration],
    /// How transactions begin (SQLite takes the write lock at once).
    pub(crate) begin: &'static str,
    /// Serializes migrations between processes, in the migration's transaction.
    pub(crate) migration_lock: Option<&'static str>,
    /// `(version)`: one row if applied.
    pub(crate) migration_applied: &'static str,
    /// `(version, description)`.
    pub(crate) migration_record: &'static str,
    /// The statement that stores `n` events at once: `(task_id, family, stage,
    /// outcome, body)` for each, then `now`; returning `(task_id, family, stage,
    /// outcome)` of each event stored (not of those whose key was there).
    pub(crate) insert_many: fn(usize) -> String,
    /// `(lease_ms, token, limit, now)`, returning `(id, task_id, family, stage, body,
    /// attempts, age_ms, outcome)` of up to `limit` due events.
    pub(crate) lease: &'static str,
    /// `(lease_ms, id, token, now)`.
    pub(crate) heartbeat: &'static str,
    /// `(id, token, now)`.
    pub(crate) complete: &'static str,
    /// `(delay_ms, error, id, token, now)`.
    pub(crate) retry: &'static str,
    /// `(error, id, token, now)`.
    pub(crate) bury: &'static str,
    /// `(id, token, now)`.
    pub(crate) release: &'static str,
    /// `(token_prefix, now)`: SQLite puts back what a gone process left running.
    #[cfg_attr(not(feature = "sqlite"), allow(dead_code))]
    pub(crate) take_back: Option<&'static str>,
    /// `(id, now)`.
    pub(crate) replay_event: &'static str,
    /// `(now)`.
    pub(crate) replay_dead: &'static str,
    /// `(task_id, now)`.
    pub(crate) replay_task: &'static str,
    /// `(older_than_ms, batch, now)`: deletes at most `batch` of the events to prune,
    /// the longest finished first (the partial index on `finished_at`), so one
    /// statement holds the table's write lock only briefly; on PostgreSQL it skips rows
    /// another replica's pruning holds.
    pub(crate) prune: &'static str,
    /// `(now)`, returning `(state, count, age_ms of the oldest)` per state.
    pub(crate) stats: &'static str,
    /// `(now)`, as `stats` but for the pending, running and dead events only: one
    /// index range per state (`(state, id)`), whatever the number of done events.
    pub(crate) queue: &'static str,
    /// `(id)`, returning `(id, task_id, family, stage, outcome, body, state, attempts,
    /// last_error)`.
    pub(crate) event: &'static str,
    /// `(task_id)`, returning the columns of `event`, oldest first.
    pub(crate) events_of_task: &'static str,
}
