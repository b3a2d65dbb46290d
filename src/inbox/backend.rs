//! The storage operations the inbox needs, written once over the statement table of
//! the backend in use (`sqlite.rs`, `postgres.rs`; see `statements.rs` for what each
//! statement takes). The backend is chosen at run time by the URL.

use std::fmt;
use std::time::Duration;

use sqlx::{Row as _, query};

use super::Config;
use super::error::InboxError;
use super::migrate::apply_missing;
use super::rows::{Leased, NewEvent, attempt, from_millis, millis, stored_event};
use super::types::{InboxStats, Replay, StoredEvent};

/// A transaction a handler took, to be committed with the event's `done`.
pub(crate) enum Tx {
    #[cfg(feature = "sqlite")]
    Sqlite(sqlx::Transaction<'static, sqlx::Sqlite>),
    #[cfg(feature = "postgres")]
    Postgres(sqlx::Transaction<'static, sqlx::Postgres>),
}

impl Tx {
    #[cfg(feature = "sqlite")]
    fn into_sqlite(self) -> Option<sqlx::Transaction<'static, sqlx::Sqlite>> {
        match self {
            Self::Sqlite(tx) => Some(tx),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }

    #[cfg(feature = "postgres")]
    fn into_postgres(self) -> Option<sqlx::Transaction<'static, sqlx::Postgres>> {
        match self {
            Self::Postgres(tx) => Some(tx),
            #[allow(unreachable_patterns)]
            _ => None,
        }
    }
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

/// SQLite's statements take this process's clock as their last parameter.
#[cfg(feature = "sqlite")]
fn local_now<'q>(
    statement: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    statement.bind(super::sqlite::now_ms())
}

/// PostgreSQL's statements read the server's clock themselves.
#[cfg(feature = "postgres")]
fn server_now(
    statement: sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments>,
) -> sqlx::query::Query<'_, sqlx::Postgres, sqlx::postgres::PgArguments> {
    statement
}

/// How many events one pruning statement deletes at most.
const PRUNE_BATCH: i64 = 1000;
/// At most this many pruning statements per call (1,000,000 events); the next call
/// takes the rest.
const PRUNE_MAX_BATCHES: u32 = 1000;
/// The most events one pruning call deletes: a call that deleted this many may have
/// left more.
pub(crate) const PRUNE_MAX_EVENTS: u64 = PRUNE_BATCH.unsigned_abs() * PRUNE_MAX_BATCHES as u64;

/// Runs `$body` with the backend in use: its pool as `$pool`, its statements as `$sql`,
/// `$now` binding the clock where the backend takes it as a parameter, `$wrap` making
/// a [`Tx`] of its transaction and `$own` taking its transaction out of a [`Tx`].
macro_rules! with_backend {
    ($backend:expr, |$pool:ident, $sql:ident, $now:ident, $wrap:ident, $own:ident| $body:expr) => {
        match $backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => {
                let ($pool, $sql) = (backend.pool(), &super::sqlite::STATEMENTS);
                let ($now, $wrap, $own) = (local_now, Tx::Sqlite, Tx::into_sqlite);
                let _ = (&$pool, &$sql, &$now, &$wrap, &$own);
                $body
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => {
                let ($pool, $sql) = (backend.pool(), &super::postgres::STATEMENTS);
                let ($now, $wrap, $own) = (server_now, Tx::Postgres, Tx::into_postgres);
                let _ = (&$pool, &$sql, &$now, &$wrap, &$own);
                $body
            }
        }
    };
}

/// Reads a [`StoredEvent`] from a row of the `event` statements.
macro_rules! read_event {
    ($row:expr) => {{
        let row = $row;
        Ok::<_, sqlx::Error>(stored_event(
            row.try_get(0)?,
            row.try_get(1)?,
            row.try_get(2)?,
            row.try_get(3)?,
            row.try_get(4)?,
            row.try_get(5)?,
            row.try_get::<&str, _>(6)?,
            row.try_get(7)?,
            row.try_get(8)?,
        ))
    }};
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

    /// How many batches of the intake commit at once: one on SQLite (one writer at a
    /// time), half the pool on PostgreSQL (the workers keep the rest).
    pub(crate) fn write_concurrency(&self, config: &Config) -> usize {
        let _ = config;
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite(_) => 1,
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => usize::try_from(config.max_connections / 2)
                .unwrap_or(1)
                .max(1),
        }
    }

    /// Applies the migrations missing from `suno_inbox_migrations`, in one
    /// transaction, serialized against other processes (SQLite `BEGIN IMMEDIATE`,
    /// PostgreSQL an advisory lock).
    pub(crate) async fn migrate(&self) -> Result<(), InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            apply_missing!(pool, sql)?;
            Ok(())
        })
    }

    /// Stores the events whose keys are not present, in one statement: for each event,
    /// `true` if it was stored. The events' keys must differ.
    pub(crate) async fn insert_many(
        &self,
        events: &[NewEvent<'_>],
    ) -> Result<Vec<bool>, InboxError> {
        if events.is_empty() {
            return Ok(Vec::new());
        }
        with_backend!(self, |pool, sql, now, wrap, own| {
            let text = (sql.insert_many)(events.len());
            let mut statement = query(&text);
            for event in events {
                statement = statement
                    .bind(event.task_id)
                    .bind(event.family)
                    .bind(event.stage)
                    .bind(event.outcome)
                    .bind(event.body);
            }
            // Every row: the statement commits (or fails to) once it has run to its end.
            let rows = now(statement).fetch_all(pool).await?;
            let stored = rows
                .iter()
                .map(|row| {
                    Ok::<_, sqlx::Error>((
                        row.try_get::<&str, _>(0)?,
                        row.try_get::<&str, _>(1)?,
                        row.try_get::<&str, _>(2)?,
                        row.try_get::<&str, _>(3)?,
                    ))
                })
                .collect::<Result<std::collections::HashSet<_>, _>>()?;
            Ok(events
                .iter()
                .map(|event| {
                    stored.contains(&(event.task_id, event.family, event.stage, event.outcome))
                })
                .collect())
        })
    }

    /// Leases up to `limit` due events (pending and due, or running with an expired
    /// lease), all under `token` (each row's id tells them apart), oldest first.
    pub(crate) async fn lease(
        &self,
        token: &str,
        lease: Duration,
        limit: usize,
    ) -> Result<Vec<Leased>, InboxError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        with_backend!(self, |pool, sql, now, wrap, own| {
            let statement = query(sql.lease).bind(millis(lease)).bind(token).bind(limit);
            // Every row: the statement commits (or fails to) only when it has run to
            // its end, and a lease whose commit failed must not run.
            let rows = now(statement).fetch_all(pool).await?;
            let mut leased = rows
                .iter()
                .map(|row| {
                    Ok::<_, sqlx::Error>(Leased {
                        id: row.try_get(0)?,
                        task_id: row.try_get(1)?,
                        family: row.try_get(2)?,
                        stage: row.try_get(3)?,
                        body: row.try_get::<Vec<u8>, _>(4)?.into(),
                        attempt: attempt(row.try_get(5)?),
                        age: from_millis(row.try_get(6)?),
                        outcome: row.try_get(7)?,
                    })
                })
                .collect::<Result<Vec<_>, _>>()?;
            // RETURNING gives no order: the oldest first.
            leased.sort_by_key(|event| event.id);
            Ok(leased)
        })
    }

    /// Extends a lease; `false` if `token` no longer holds it.
    pub(crate) async fn heartbeat(
        &self,
        id: i64,
        token: &str,
        lease: Duration,
    ) -> Result<bool, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            let statement = query(sql.heartbeat)
                .bind(millis(lease))
                .bind(id)
                .bind(token);
            Ok(now(statement).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Marks the event done, in `tx` when the handler took one.
    pub(crate) async fn complete(
        &self,
        id: i64,
        token: &str,
        tx: Option<Tx>,
    ) -> Result<bool, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            let statement = now(query(sql.complete).bind(id).bind(token));
            match tx {
                Some(tx) => {
                    let mut tx = own(tx).ok_or_else(InboxError::wrong_backend)?;
                    let held = statement.execute(&mut *tx).await?.rows_affected() == 1;
                    if held {
                        tx.commit().await?;
                    } else {
                        tx.rollback().await?;
                    }
                    Ok(held)
                }
                None => Ok(statement.execute(pool).await?.rows_affected() == 1),
            }
        })
    }

    /// Schedules the event again after `delay`.
    pub(crate) async fn retry(
        &self,
        id: i64,
        token: &str,
        delay: Duration,
        error: &str,
    ) -> Result<bool, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            let statement = query(sql.retry)
                .bind(millis(delay))
                .bind(error)
                .bind(id)
                .bind(token);
            Ok(now(statement).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Dead-letters the event.
    pub(crate) async fn bury(&self, id: i64, token: &str, error: &str) -> Result<bool, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            let statement = query(sql.bury).bind(error).bind(id).bind(token);
            Ok(now(statement).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// Gives the event back, its attempt not counted.
    pub(crate) async fn release(&self, id: i64, token: &str) -> Result<bool, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            let statement = query(sql.release).bind(id).bind(token);
            Ok(now(statement).execute(pool).await?.rows_affected() == 1)
        })
    }

    /// The file whose lock makes a SQLite inbox's workers one process's (`None` on
    /// PostgreSQL, whose replicas share the table under their leases).
    #[cfg(feature = "sqlite")]
    pub(crate) fn lock_path(&self) -> Option<&std::path::Path> {
        match self {
            Self::Sqlite(backend) => backend.lock_path(),
            #[cfg(feature = "postgres")]
            Self::Postgres(_) => None,
        }
    }

    /// SQLite: puts back to pending the events a process that held the workers' lock
    /// left running when it died (their lease-token `prefix`). PostgreSQL: nothing.
    #[cfg(feature = "sqlite")]
    pub(crate) async fn take_back(&self, prefix: &str) -> Result<u64, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            let Some(statement) = sql.take_back else {
                return Ok(0);
            };
            let done = now(query(statement).bind(prefix)).execute(pool).await?;
            Ok(done.rows_affected())
        })
    }

    pub(crate) async fn replay(&self, which: &Replay) -> Result<u64, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            let statement = match which {
                Replay::Event(id) => query(sql.replay_event).bind(*id),
                Replay::Dead => query(sql.replay_dead),
                Replay::Task(task_id) => query(sql.replay_task).bind(task_id.as_str()),
            };
            Ok(now(statement).execute(pool).await?.rows_affected())
        })
    }

    /// Deletes in batches of [`PRUNE_BATCH`], each its own short transaction with its
    /// own time limit (`batch_timeout`), pausing between them so the intake's writes
    /// (SQLite's single writer above all) go first; at most [`PRUNE_MAX_BATCHES`] per
    /// call, the rest left for the next.
    pub(crate) async fn prune(
        &self,
        older_than: Duration,
        batch_timeout: Duration,
    ) -> Result<u64, InboxError> {
        crate::batches::delete_in_batches(PRUNE_MAX_BATCHES, || async move {
            let batch = async {
                Ok::<u64, InboxError>(with_backend!(self, |pool, sql, now, wrap, own| {
                    let statement = query(sql.prune).bind(millis(older_than)).bind(PRUNE_BATCH);
                    now(statement).execute(pool).await?.rows_affected()
                }))
            };
            let deleted =
                tokio::time::timeout(batch_timeout, batch)
                    .await
                    .map_err(|_elapsed| {
                        InboxError::unavailable(format!(
                            "a pruning statement took longer than {batch_timeout:?}"
                        ))
                    })??;
            Ok((deleted, deleted >= PRUNE_BATCH.unsigned_abs()))
        })
        .await
    }

    pub(crate) async fn stats(&self) -> Result<InboxStats, InboxError> {
        self.counts(false).await
    }

    /// [`stats`](Self::stats) without the done events (`done` is 0): what the
    /// housekeeper reports every round, at the cost of the queue, not of the table.
    pub(crate) async fn queue(&self) -> Result<InboxStats, InboxError> {
        self.counts(true).await
    }

    async fn counts(&self, queue_only: bool) -> Result<InboxStats, InboxError> {
        let rows: Vec<(String, i64, Option<i64>)> =
            with_backend!(self, |pool, sql, now, wrap, own| {
                let statement = if queue_only { sql.queue } else { sql.stats };
                let rows = now(query(statement)).fetch_all(pool).await?;
                rows.iter()
                    .map(|row| Ok((row.try_get(0)?, row.try_get(1)?, row.try_get(2)?)))
                    .collect::<Result<_, sqlx::Error>>()?
            });
        let mut stats = InboxStats::default();
        for (state, count, age) in rows {
            let count = u64::try_from(count).unwrap_or(0);
            match state.as_str() {
                "pending" => stats.pending = count,
                "running" => stats.running = count,
                "done" => {
                    stats.done = count;
                    continue;
                }
                "dead" => {
                    stats.dead = count;
                    continue;
                }
                _ => continue,
            }
            stats.oldest_pending_age = stats.oldest_pending_age.max(age.map(from_millis));
        }
        Ok(stats)
    }

    pub(crate) async fn event(&self, id: i64) -> Result<Option<StoredEvent>, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            let row = query(sql.event).bind(id).fetch_optional(pool).await?;
            Ok(row.as_ref().map(|row| read_event!(row)).transpose()?)
        })
    }

    pub(crate) async fn events_of_task(
        &self,
        task_id: &str,
    ) -> Result<Vec<StoredEvent>, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            let rows = query(sql.events_of_task)
                .bind(task_id)
                .fetch_all(pool)
                .await?;
            Ok(rows
                .iter()
                .map(|row| read_event!(row))
                .collect::<Result<_, _>>()?)
        })
    }

    /// Starts a transaction for a handler. On SQLite it takes the write lock at once,
    /// so the handler's first write cannot fail with `SQLITE_BUSY` on a snapshot that
    /// another writer moved past.
    pub(crate) async fn begin(&self) -> Result<Tx, InboxError> {
        with_backend!(self, |pool, sql, now, wrap, own| {
            Ok(wrap(pool.begin_with(sql.begin).await?))
        })
    }

    pub(crate) async fn close(&self) {
        with_backend!(self, |pool, sql, now, wrap, own| pool.close().await);
    }
}
