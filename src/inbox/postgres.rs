//! The PostgreSQL backend: several replicas share one database. Times come from the
//! database server's clock, so the replicas' clocks need not agree. A lease takes the
//! next due row with `FOR UPDATE SKIP LOCKED`: concurrent workers never wait for, nor
//! take, each other's row.

use std::time::Duration;

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::{Row as _, query};

use super::Config;
use super::backend::{Leased, NewEvent, Tx, from_millis, millis, stored_event};
use super::error::InboxError;
use super::migrate::{CREATE_VERSIONS, POSTGRES};
use super::types::{InboxStats, Replay, StoredEvent};

/// The server's time in Unix milliseconds (fixed for one statement).
macro_rules! now {
    () => {
        "(extract(epoch from now()) * 1000)::bigint"
    };
}

/// The advisory lock that serializes migrations between replicas.
const MIGRATION_LOCK: i64 = 0x5355_4e4f_4942_5831; // "SUNOIBX1"

#[derive(Clone, Debug)]
pub(crate) struct PgBackend {
    pool: PgPool,
}

const COLUMNS: &str = "id, task_id, family, stage, outcome, body, state, attempts, last_error";

fn read_event(row: &PgRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(stored_event(
        row.try_get(0)?,
        row.try_get(1)?,
        row.try_get(2)?,
        row.try_get(3)?,
        row.try_get(4)?,
        row.try_get(5)?,
        row.try_get::<&str, _>(6)?,
        i64::from(row.try_get::<i32, _>(7)?),
        row.try_get(8)?,
    ))
}

impl PgBackend {
    /// The connection pool, for the other tables in the inbox's database and the
    /// operator's queries.
    pub(crate) fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(crate) async fn connect(
        options: PgConnectOptions,
        config: &Config,
    ) -> Result<Self, InboxError> {
        let pool = PgPoolOptions::new()
            .max_connections(config.max_connections)
            .acquire_timeout(config.store_timeout);
        let pool = if config.migrate_on_start {
            pool.connect_with(options).await?
        } else {
            pool.connect_lazy_with(options)
        };
        Ok(Self { pool })
    }

    pub(crate) async fn migrate(&self) -> Result<(), InboxError> {
        let mut tx = self.pool.begin().await?;
        query("SELECT pg_advisory_xact_lock($1)")
            .bind(MIGRATION_LOCK)
            .execute(&mut *tx)
            .await?;
        sqlx::raw_sql(CREATE_VERSIONS).execute(&mut *tx).await?;
        for migration in POSTGRES {
            let applied = query("SELECT 1 FROM suno_inbox_migrations WHERE version = $1")
                .bind(migration.version)
                .fetch_optional(&mut *tx)
                .await?;
            if applied.is_none() {
                sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
                query("INSERT INTO suno_inbox_migrations (version, description) VALUES ($1, $2)")
                    .bind(migration.version)
                    .bind(migration.description)
                    .execute(&mut *tx)
                    .await?;
            }
        }
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn insert(&self, event: &NewEvent<'_>) -> Result<bool, InboxError> {
        let done = query(concat!(
            "INSERT INTO suno_inbox_events \
             (task_id, family, stage, outcome, body, received_at, run_after) \
             VALUES ($1, $2, $3, $4, $5, ",
            now!(),
            ", ",
            now!(),
            ") ON CONFLICT (task_id, family, stage, outcome) DO NOTHING"
        ))
        .bind(event.task_id)
        .bind(event.family)
        .bind(event.stage)
        .bind(event.outcome)
        .bind(event.body)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn lease(
        &self,
        token: &str,
        lease: Duration,
    ) -> Result<Option<Leased>, InboxError> {
        let row = query(concat!(
            "WITH next AS (SELECT id FROM suno_inbox_events \
                  WHERE state IN ('pending', 'running') AND run_after <= ",
            now!(),
            " ORDER BY run_after, id LIMIT 1 FOR UPDATE SKIP LOCKED) \
             UPDATE suno_inbox_events e \
             SET state = 'running', attempts = e.attempts + 1, run_after = ",
            now!(),
            " + $1, lease_token = $2 \
             FROM next WHERE e.id = next.id \
             RETURNING e.id, e.task_id, e.family, e.stage, e.body, e.attempts, ",
            now!(),
            " - e.received_at, e.outcome"
        ))
        .bind(millis(lease))
        .bind(token)
        .fetch_optional(&self.pool)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(Leased {
            id: row.try_get(0)?,
            task_id: row.try_get(1)?,
            family: row.try_get(2)?,
            stage: row.try_get(3)?,
            body: row.try_get::<Vec<u8>, _>(4)?.into(),
            attempt: u32::try_from(row.try_get::<i32, _>(5)?).unwrap_or(u32::MAX),
            age: from_millis(row.try_get(6)?),
            outcome: row.try_get(7)?,
        }))
    }

    pub(crate) async fn heartbeat(
        &self,
        id: i64,
        token: &str,
        lease: Duration,
    ) -> Result<bool, InboxError> {
        let done = query(concat!(
            "UPDATE suno_inbox_events SET run_after = ",
            now!(),
            " + $1 WHERE id = $2 AND lease_token = $3 AND state = 'running'"
        ))
        .bind(millis(lease))
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn complete(
        &self,
        id: i64,
        token: &str,
        tx: Option<Tx>,
    ) -> Result<bool, InboxError> {
        let statement = query(concat!(
            "UPDATE suno_inbox_events \
             SET state = 'done', finished_at = ",
            now!(),
            ", lease_token = NULL, last_error = NULL \
             WHERE id = $1 AND lease_token = $2 AND state = 'running'"
        ))
        .bind(id)
        .bind(token);
        match tx {
            Some(Tx::Postgres(mut tx)) => {
                let held = statement.execute(&mut *tx).await?.rows_affected() == 1;
                if held {
                    tx.commit().await?;
                } else {
                    tx.rollback().await?;
                }
                Ok(held)
            }
            #[allow(unreachable_patterns)]
            Some(_) => Err(InboxError::wrong_backend()),
            None => Ok(statement.execute(&self.pool).await?.rows_affected() == 1),
        }
    }

    pub(crate) async fn retry(
        &self,
        id: i64,
        token: &str,
        delay: Duration,
        error: &str,
    ) -> Result<bool, InboxError> {
        let done = query(concat!(
            "UPDATE suno_inbox_events \
             SET state = 'pending', run_after = ",
            now!(),
            " + $1, lease_token = NULL, last_error = $2 \
             WHERE id = $3 AND lease_token = $4 AND state = 'running'"
        ))
        .bind(millis(delay))
        .bind(error)
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn bury(&self, id: i64, token: &str, error: &str) -> Result<bool, InboxError> {
        let done = query(concat!(
            "UPDATE suno_inbox_events \
             SET state = 'dead', finished_at = ",
            now!(),
            ", lease_token = NULL, last_error = $1 \
             WHERE id = $2 AND lease_token = $3 AND state = 'running'"
        ))
        .bind(error)
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn release(&self, id: i64, token: &str) -> Result<bool, InboxError> {
        let done = query(concat!(
            "UPDATE suno_inbox_events \
             SET state = 'pending', run_after = ",
            now!(),
            ", lease_token = NULL, attempts = GREATEST(attempts - 1, 0) \
             WHERE id = $1 AND lease_token = $2 AND state = 'running'"
        ))
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Other replicas may hold running events: they are left to their leases.
    #[allow(clippy::unused_async)]
    pub(crate) async fn recover_after_restart(&self) -> Result<u64, InboxError> {
        Ok(0)
    }

    pub(crate) async fn replay(&self, which: &Replay) -> Result<u64, InboxError> {
        macro_rules! set {
            () => {
                concat!(
                    "UPDATE suno_inbox_events SET state = 'pending', run_after = ",
                    now!(),
                    ", attempts = 0, finished_at = NULL, last_error = NULL, lease_token = NULL "
                )
            };
        }
        let done = match which {
            Replay::Event(id) => {
                query(concat!(
                    set!(),
                    "WHERE id = $1 AND state IN ('done', 'dead')"
                ))
                .bind(id)
                .execute(&self.pool)
                .await?
            }
            Replay::Dead => {
                query(concat!(set!(), "WHERE state = 'dead'"))
                    .execute(&self.pool)
                    .await?
            }
            Replay::Task(task_id) => {
                query(concat!(
                    set!(),
                    "WHERE task_id = $1 AND state IN ('done', 'dead')"
                ))
                .bind(task_id)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(done.rows_affected())
    }

    pub(crate) async fn prune(&self, older_than: Duration) -> Result<u64, InboxError> {
        let done = query(concat!(
            "DELETE FROM suno_inbox_events \
             WHERE state IN ('done', 'dead') AND finished_at <= ",
            now!(),
            " - $1"
        ))
        .bind(millis(older_than))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn stats(&self) -> Result<InboxStats, InboxError> {
        let rows = query(concat!(
            "SELECT state, COUNT(*), ",
            now!(),
            " - MIN(received_at) FROM suno_inbox_events GROUP BY state"
        ))
        .fetch_all(&self.pool)
        .await?;
        let mut stats = InboxStats::default();
        for row in rows {
            let count = u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0);
            let age: Option<i64> = row.try_get(2)?;
            match row.try_get::<&str, _>(0)? {
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
        let row = query(&format!(
            "SELECT {COLUMNS} FROM suno_inbox_events WHERE id = $1"
        ))
        .bind(id)
        .fetch_optional(&self.pool)
        .await?;
        Ok(row.as_ref().map(read_event).transpose()?)
    }

    pub(crate) async fn events_of_task(
        &self,
        task_id: &str,
    ) -> Result<Vec<StoredEvent>, InboxError> {
        let rows = query(&format!(
            "SELECT {COLUMNS} FROM suno_inbox_events WHERE task_id = $1 ORDER BY id"
        ))
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(read_event).collect::<Result<_, _>>()?)
    }

    pub(crate) async fn begin(&self) -> Result<Tx, InboxError> {
        Ok(Tx::Postgres(self.pool.begin().await?))
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
