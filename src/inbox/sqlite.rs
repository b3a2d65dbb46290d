//! The SQLite backend: one file, one process. Times come from this process's clock,
//! bound as each statement's last parameter. SQLite runs one write at a time, so the
//! lease (`UPDATE … WHERE id IN (SELECT … LIMIT n) RETURNING …`) is atomic without row
//! locks.

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteSynchronous,
};

use super::Config;
use super::error::InboxError;
use super::rows::millis;
use super::statements::Statements;

/// How long a statement waits for SQLite's write lock before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// A pending retry, a new event or a replay: due at `?now`.
macro_rules! set_pending {
    () => {
        "UPDATE suno_inbox_events SET state = 'pending', lease_token = NULL, "
    };
}

/// `rows` events of `(task_id, family, stage, outcome, body)` each, then `now`,
/// returning the keys of those stored.
fn insert_many(rows: usize) -> String {
    use std::fmt::Write as _;
    let now = rows * 5 + 1;
    let mut sql = String::with_capacity(160 + rows * 48);
    sql.push_str(
        "INSERT INTO suno_inbox_events \
         (task_id, family, stage, outcome, body, received_at, run_after) VALUES ",
    );
    for row in 0..rows {
        let at = row * 5;
        let comma = if row == 0 { "" } else { ", " };
        let _ = write!(
            sql,
            "{comma}(?{}, ?{}, ?{}, ?{}, ?{}, ?{now}, ?{now})",
            at + 1,
            at + 2,
            at + 3,
            at + 4,
            at + 5
        );
    }
    sql.push_str(
        " ON CONFLICT (task_id, family, stage, outcome) DO NOTHING \
         RETURNING task_id, family, stage, outcome",
    );
    sql
}

pub(crate) const STATEMENTS: Statements = Statements {
    migrations: super::migrate::SQLITE,
    begin: "BEGIN IMMEDIATE",
    migration_lock: None,
    migration_applied: "SELECT 1 FROM suno_inbox_migrations WHERE version = ?1",
    migration_record: "INSERT INTO suno_inbox_migrations (version, description) VALUES (?1, ?2)",
    insert_many,
    lease: "UPDATE suno_inbox_events \
         SET state = 'running', attempts = attempts + 1, run_after = ?4 + ?1, lease_token = ?2 \
         WHERE id IN (SELECT id FROM suno_inbox_events \
                      WHERE state IN ('pending', 'running') AND run_after <= ?4 \
                      ORDER BY run_after, id LIMIT ?3) \
         RETURNING id, task_id, family, stage, body, attempts, ?4 - received_at, outcome",
    heartbeat: "UPDATE suno_inbox_events SET run_after = ?4 + ?1 \
         WHERE id = ?2 AND lease_token = ?3 AND state = 'running'",
    complete: "UPDATE suno_inbox_events \
         SET state = 'done', finished_at = ?3, lease_token = NULL, last_error = NULL \
         WHERE id = ?1 AND lease_token = ?2 AND state = 'running'",
    retry: concat!(
        set_pending!(),
        "run_after = ?5 + ?1, last_error = ?2 \
         WHERE id = ?3 AND lease_token = ?4 AND state = 'running'"
    ),
    bury: "UPDATE suno_inbox_events \
         SET state = 'dead', finished_at = ?4, lease_token = NULL, last_error = ?1 \
         WHERE id = ?2 AND lease_token = ?3 AND state = 'running'",
    release: concat!(
        set_pending!(),
        "run_after = ?3, attempts = MAX(attempts - 1, 0) \
         WHERE id = ?1 AND lease_token = ?2 AND state = 'running'"
    ),
    take_back: Some(concat!(
        set_pending!(),
        "run_after = ?2 WHERE state = 'running' AND substr(lease_token, 1, 16) = ?1"
    )),
    replay_event: concat!(
        set_pending!(),
        "run_after = ?2, attempts = 0, finished_at = NULL, last_error = NULL \
         WHERE id = ?1 AND state IN ('done', 'dead')"
    ),
    replay_dead: concat!(
        set_pending!(),
        "run_after = ?1, attempts = 0, finished_at = NULL, last_error = NULL \
         WHERE state = 'dead'"
    ),
    replay_task: concat!(
        set_pending!(),
        "run_after = ?2, attempts = 0, finished_at = NULL, last_error = NULL \
         WHERE task_id = ?1 AND state IN ('done', 'dead')"
    ),
    prune: "DELETE FROM suno_inbox_events WHERE id IN (SELECT id FROM suno_inbox_events \
         WHERE state IN ('done', 'dead') AND finished_at <= ?3 - ?1 ORDER BY finished_at \
         LIMIT ?2)",
    stats: "SELECT state, COUNT(*), ?1 - MIN(received_at) FROM suno_inbox_events GROUP BY state",
    queue: "SELECT state, COUNT(*), ?1 - MIN(received_at) FROM suno_inbox_events \
         WHERE state IN ('pending', 'running', 'dead') GROUP BY state",
    event: "SELECT id, task_id, family, stage, outcome, body, state, attempts, last_error \
         FROM suno_inbox_events WHERE id = ?1",
    events_of_task: "SELECT id, task_id, family, stage, outcome, body, state, attempts, \
         last_error FROM suno_inbox_events WHERE task_id = ?1 ORDER BY id",
};

/// This process's clock in Unix milliseconds, the last parameter of SQLite's
/// statements that need the time.
pub(crate) fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, millis)
}

#[derive(Clone, Debug)]
pub(crate) struct SqliteBackend {
    pool: SqlitePool,
    /// The workers' lock file (`None` for an in-memory database).
    lock_path: Option<PathBuf>,
}

impl SqliteBackend {
    /// The connection pool, for the other tables in the inbox's database.
    pub(crate) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The file whose lock makes the workers one process's.
    pub(crate) fn lock_path(&self) -> Option<&Path> {
        self.lock_path.as_deref()
    }

    pub(crate) async fn connect(
        options: SqliteConnectOptions,
        config: &Config,
    ) -> Result<Self, InboxError> {
        let filename = options.get_filename();
        let in_memory = filename.as_os_str() == ":memory:"
            || filename
                .to_str()
                .is_some_and(|name| name.starts_with("file:"));
        let lock_path = (!in_memory).then(|| super::lock::lock_path(filename));
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
        Ok(Self { pool, lock_path })
    }
}
