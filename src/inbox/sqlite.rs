//! The SQLite backend: one file, one process. Times come from this process's clock.
//! SQLite runs one write at a time, so the lease (`UPDATE … WHERE id = (SELECT … LIMIT
//! 1) RETURNING …`) is atomic without row locks.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow,
    SqliteSynchronous,
};
use sqlx::{Row as _, query};

use super::Config;
use super::backend::{Leased, NewEvent, Tx, from_millis, millis, stored_event};
use super::error::InboxError;
use super::migrate::{CREATE_VERSIONS, SQLITE};
use super::types::{InboxStats, Replay, StoredEvent};
use crate::store::ClaimToken;

/// How long a statement waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Clone, Debug)]
pub(crate) struct SqliteBackend {
    pool: SqlitePool,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

/// The part of this process's lease tokens that no other process shares.
fn process_prefix() -> String {
    let token = ClaimToken::new_unique().to_string();
    token.get(..16).unwrap_or_default().to_owned()
}

const COLUMNS: &str = "id, task_id, family, stage, outcome, body, state, attempts, last_error";

fn read_event(row: &SqliteRow) -> Result<StoredEvent, sqlx::Error> {
    Ok(stored_event(
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
}

impl SqliteBackend {
    /// The connection pool, for the other tables in the inbox's database and the
    /// operator's queries.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    pub(crate) async fn connect(
        options: SqliteConnectOptions,
        config: &Config,
    ) -> Result<Self, InboxError> {
        let options = options
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(BUSY_TIMEOUT);
        let pool = SqlitePoolOptions::new().max_connections(config.max_connections);
        let pool = if config.migrate_on_start {
            pool.connect_with(options).await?
        } else {
            pool.connect_lazy_with(options)
        };
        Ok(Self { pool })
    }

    pub(crate) async fn migrate(&self) -> Result<(), InboxError> {
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        sqlx::raw_sql(CREATE_VERSIONS).execute(&mut *tx).await?;
        for migration in SQLITE {
            let applied = query("SELECT 1 FROM suno_inbox_migrations WHERE version = ?1")
                .bind(migration.version)
                .fetch_optional(&mut *tx)
                .await?;
            if applied.is_none() {
                sqlx::raw_sql(migration.sql).execute(&mut *tx).await?;
                query("INSERT INTO suno_inbox_migrations (version, description) VALUES (?1, ?2)")
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
        let now = now_ms();
        let done = query(
            "INSERT INTO suno_inbox_events \
             (task_id, family, stage, outcome, body, received_at, run_after) \
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?6) \
             ON CONFLICT (task_id, family, stage, outcome) DO NOTHING",
        )
        .bind(event.task_id)
        .bind(event.family)
        .bind(event.stage)
        .bind(event.outcome)
        .bind(event.body)
        .bind(now)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn lease(
        &self,
        token: &str,
        lease: Duration,
    ) -> Result<Option<Leased>, InboxError> {
        let now = now_ms();
        let row = query(
            "UPDATE suno_inbox_events \
             SET state = 'running', attempts = attempts + 1, run_after = ?1 + ?2, lease_token = ?3 \
             WHERE id = (SELECT id FROM suno_inbox_events \
                         WHERE state IN ('pending', 'running') AND run_after <= ?1 \
                         ORDER BY run_after, id LIMIT 1) \
             RETURNING id, task_id, family, stage, body, attempts, ?1 - received_at, outcome",
        )
        .bind(now)
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
            attempt: u32::try_from(row.try_get::<i64, _>(5)?).unwrap_or(u32::MAX),
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
        let done = query(
            "UPDATE suno_inbox_events SET run_after = ?1 \
             WHERE id = ?2 AND lease_token = ?3 AND state = 'running'",
        )
        .bind(now_ms().saturating_add(millis(lease)))
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
        let statement = query(
            "UPDATE suno_inbox_events \
             SET state = 'done', finished_at = ?1, lease_token = NULL, last_error = NULL \
             WHERE id = ?2 AND lease_token = ?3 AND state = 'running'",
        )
        .bind(now_ms())
        .bind(id)
        .bind(token);
        match tx {
            #[allow(unreachable_patterns)]
            Some(Tx::Sqlite(mut tx)) => {
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
        let done = query(
            "UPDATE suno_inbox_events \
             SET state = 'pending', run_after = ?1, lease_token = NULL, last_error = ?2 \
             WHERE id = ?3 AND lease_token = ?4 AND state = 'running'",
        )
        .bind(now_ms().saturating_add(millis(delay)))
        .bind(error)
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn bury(&self, id: i64, token: &str, error: &str) -> Result<bool, InboxError> {
        let done = query(
            "UPDATE suno_inbox_events \
             SET state = 'dead', finished_at = ?1, lease_token = NULL, last_error = ?2 \
             WHERE id = ?3 AND lease_token = ?4 AND state = 'running'",
        )
        .bind(now_ms())
        .bind(error)
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    pub(crate) async fn release(&self, id: i64, token: &str) -> Result<bool, InboxError> {
        let done = query(
            "UPDATE suno_inbox_events \
             SET state = 'pending', run_after = ?1, lease_token = NULL, \
                 attempts = MAX(attempts - 1, 0) \
             WHERE id = ?2 AND lease_token = ?3 AND state = 'running'",
        )
        .bind(now_ms())
        .bind(id)
        .bind(token)
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// A SQLite inbox belongs to one process: an event running under a lease of
    /// another process was left by a run that died, and is taken back at once.
    pub(crate) async fn recover_after_restart(&self) -> Result<u64, InboxError> {
        let done = query(
            "UPDATE suno_inbox_events SET state = 'pending', run_after = ?1, lease_token = NULL \
             WHERE state = 'running' AND substr(lease_token, 1, 16) <> ?2",
        )
        .bind(now_ms())
        .bind(process_prefix())
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn replay(&self, which: &Replay) -> Result<u64, InboxError> {
        const SET: &str = "UPDATE suno_inbox_events \
             SET state = 'pending', run_after = ?1, attempts = 0, finished_at = NULL, \
                 last_error = NULL, lease_token = NULL ";
        let now = now_ms();
        let done = match which {
            Replay::Event(id) => {
                query(&format!(
                    "{SET} WHERE id = ?2 AND state IN ('done', 'dead')"
                ))
                .bind(now)
                .bind(id)
                .execute(&self.pool)
                .await?
            }
            Replay::Dead => {
                query(&format!("{SET} WHERE state = 'dead'"))
                    .bind(now)
                    .execute(&self.pool)
                    .await?
            }
            Replay::Task(task_id) => {
                query(&format!(
                    "{SET} WHERE task_id = ?2 AND state IN ('done', 'dead')"
                ))
                .bind(now)
                .bind(task_id)
                .execute(&self.pool)
                .await?
            }
        };
        Ok(done.rows_affected())
    }

    pub(crate) async fn prune(&self, older_than: Duration) -> Result<u64, InboxError> {
        let done = query(
            "DELETE FROM suno_inbox_events \
             WHERE state IN ('done', 'dead') AND finished_at <= ?1",
        )
        .bind(now_ms().saturating_sub(millis(older_than)))
        .execute(&self.pool)
        .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn stats(&self) -> Result<InboxStats, InboxError> {
        let rows =
            query("SELECT state, COUNT(*), MIN(received_at) FROM suno_inbox_events GROUP BY state")
                .fetch_all(&self.pool)
                .await?;
        let now = now_ms();
        let mut stats = InboxStats::default();
        for row in rows {
            let count = u64::try_from(row.try_get::<i64, _>(1)?).unwrap_or(0);
            let oldest: Option<i64> = row.try_get(2)?;
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
            let age = oldest.map(|at| from_millis(now.saturating_sub(at)));
            stats.oldest_pending_age = stats.oldest_pending_age.max(age);
        }
        Ok(stats)
    }

    pub(crate) async fn event(&self, id: i64) -> Result<Option<StoredEvent>, InboxError> {
        let row = query(&format!(
            "SELECT {COLUMNS} FROM suno_inbox_events WHERE id = ?1"
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
            "SELECT {COLUMNS} FROM suno_inbox_events WHERE task_id = ?1 ORDER BY id"
        ))
        .bind(task_id)
        .fetch_all(&self.pool)
        .await?;
        Ok(rows.iter().map(read_event).collect::<Result<_, _>>()?)
    }

    pub(crate) async fn begin(&self) -> Result<Tx, InboxError> {
        // IMMEDIATE: the write lock is taken now, so the handler's first write cannot
        // fail with SQLITE_BUSY on a snapshot that another writer moved past.
        Ok(Tx::Sqlite(self.pool.begin_with("BEGIN IMMEDIATE").await?))
    }

    pub(crate) async fn close(&self) {
        self.pool.close().await;
    }
}
