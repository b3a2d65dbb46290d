//! The storage operations the inbox needs, and the backend chosen at run time. Each
//! backend module (`sqlite.rs`, `postgres.rs`) implements the same methods with its
//! own SQL; this module routes each call to the one in use.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::Config;
use super::error::InboxError;
use super::types::{InboxStats, Replay, StoredEvent};
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

/// A transaction a handler took, to be committed with the event's `done`.
pub(crate) enum Tx {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl fmt::Debug for Tx {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("Tx")
    }
}

/// The database an inbox uses.
#[derive(Clone)]
pub(crate) enum Backend {
    #[cfg(feature = "sqlite")]
    Sqlite(super::sqlite::SqliteBackend),
    #[cfg(feature = "postgres")]
    Postgres(super::postgres::PgBackend),
}

impl fmt::Debug for Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => f.write_str("Sqlite"),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => f.write_str("Postgres"),
        }
    }
}

/// Calls the same method on whichever backend is in use.
macro_rules! route {
    ($self:ident, $backend:ident => $call:expr) => {
        match $self {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite($backend) => $call,
            #[cfg(feature = "postgres")]
            Backend::Postgres($backend) => $call,
        }
    };
}

impl Backend {
    /// Connects by URL scheme.
    pub(crate) async fn connect(url: &str, config: &Config) -> Result<Self, InboxError> {
        let scheme = url.split_once(':').map_or("", |(scheme, _)| scheme);
        match scheme {
            #[cfg(feature = "sqlite")]
            "sqlite" => {
                use std::str::FromStr as _;
                let options = sqlx::sqlite::SqliteConnectOptions::from_str(url)
                    .map_err(InboxError::config)?;
                Self::connect_sqlite(options, config).await
            }
            #[cfg(feature = "postgres")]
            "postgres" | "postgresql" => {
                use std::str::FromStr as _;
                let options =
                    sqlx::postgres::PgConnectOptions::from_str(url).map_err(InboxError::config)?;
                Self::connect_postgres(options, config).await
            }
            _ => Err(InboxError::config(
                "the database URL must start with sqlite:// or postgres:// (and its feature be enabled)",
            )),
        }
    }

    #[cfg(feature = "sqlite")]
    pub(crate) async fn connect_sqlite(
        options: sqlx::sqlite::SqliteConnectOptions,
        config: &Config,
    ) -> Result<Self, InboxError> {
        super::sqlite::SqliteBackend::connect(options, config)
            .await
            .map(Self::Sqlite)
    }

    #[cfg(feature = "postgres")]
    pub(crate) async fn connect_postgres(
        options: sqlx::postgres::PgConnectOptions,
        config: &Config,
    ) -> Result<Self, InboxError> {
        super::postgres::PgBackend::connect(options, config)
            .await
            .map(Self::Postgres)
    }

    pub(crate) async fn migrate(&self) -> Result<(), InboxError> {
        route!(self, b => b.migrate().await)
    }

    /// Stores the event unless its key is present: `true` if it was stored.
    pub(crate) async fn insert(&self, event: &NewEvent<'_>) -> Result<bool, InboxError> {
        route!(self, b => b.insert(event).await)
    }

    /// Leases the next due event (pending and due, or running with an expired lease).
    pub(crate) async fn lease(
        &self,
        token: &str,
        lease: Duration,
    ) -> Result<Option<Leased>, InboxError> {
        route!(self, b => b.lease(token, lease).await)
    }

    /// Extends a lease; `false` if `token` no longer holds it.
    pub(crate) async fn heartbeat(
        &self,
        id: i64,
        token: &str,
        lease: Duration,
    ) -> Result<bool, InboxError> {
        route!(self, b => b.heartbeat(id, token, lease).await)
    }

    /// Marks the event done, in `tx` when the handler took one.
    pub(crate) async fn complete(
        &self,
        id: i64,
        token: &str,
        tx: Option<Tx>,
    ) -> Result<bool, InboxError> {
        route!(self, b => b.complete(id, token, tx).await)
    }

    /// Schedules the event again after `delay`.
    pub(crate) async fn retry(
        &self,
        id: i64,
        token: &str,
        delay: Duration,
        error: &str,
    ) -> Result<bool, InboxError> {
        route!(self, b => b.retry(id, token, delay, error).await)
    }

    /// Dead-letters the event.
    pub(crate) async fn bury(&self, id: i64, token: &str, error: &str) -> Result<bool, InboxError> {
        route!(self, b => b.bury(id, token, error).await)
    }

    /// Gives the event back, its attempt not counted.
    pub(crate) async fn release(&self, id: i64, token: &str) -> Result<bool, InboxError> {
        route!(self, b => b.release(id, token).await)
    }

    /// The file whose lock makes a SQLite inbox's workers one process's (`None` on
    /// PostgreSQL, whose replicas share the table under their leases).
    #[cfg(feature = "sqlite")]
    pub(crate) fn lock_path(&self) -> Option<&std::path::Path> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(b) => b.lock_path(),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => None,
        }
    }

    /// SQLite: puts back to pending the events a process that held the workers' lock
    /// left running when it died (their lease-token `prefix`). PostgreSQL: nothing.
    #[cfg(feature = "sqlite")]
    pub(crate) async fn take_back(&self, prefix: &str) -> Result<u64, InboxError> {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(b) => b.take_back(prefix).await,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => {
                let _ = prefix;
                Ok(0)
            }
        }
    }

    pub(crate) async fn replay(&self, which: &Replay) -> Result<u64, InboxError> {
        route!(self, b => b.replay(which).await)
    }

    pub(crate) async fn prune(&self, older_than: Duration) -> Result<u64, InboxError> {
        route!(self, b => b.prune(older_than).await)
    }

    pub(crate) async fn stats(&self) -> Result<InboxStats, InboxError> {
        route!(self, b => b.stats().await)
    }

    pub(crate) async fn event(&self, id: i64) -> Result<Option<StoredEvent>, InboxError> {
        route!(self, b => b.event(id).await)
    }

    pub(crate) async fn events_of_task(
        &self,
        task_id: &str,
    ) -> Result<Vec<StoredEvent>, InboxError> {
        route!(self, b => b.events_of_task(task_id).await)
    }

    /// Starts a transaction for a handler.
    pub(crate) async fn begin(&self) -> Result<Tx, InboxError> {
        route!(self, b => b.begin().await)
    }

    pub(crate) async fn close(&self) {
        route!(self, b => b.close().await)
    }
}

/// A duration in whole milliseconds, for the time columns.
pub(crate) fn millis(duration: Duration) -> i64 {
    i64::try_from(duration.as_millis()).unwrap_or(i64::MAX)
}

/// A column's millisecond count as a duration (negative counts as zero).
pub(crate) fn from_millis(millis: i64) -> Duration {
    Duration::from_millis(u64::try_from(millis).unwrap_or(0))
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
        state: super::types::EventState::from_column(state)
            .unwrap_or(super::types::EventState::Pending),
        attempts: u32::try_from(attempts).unwrap_or(0),
        last_error,
    }
}
