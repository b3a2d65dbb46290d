//! The PostgreSQL backend: several replicas share one database. Times come from the
//! database server's clock, so the replicas' clocks need not agree. A lease takes the
//! next due row with `FOR UPDATE SKIP LOCKED`: concurrent workers never wait for, nor
//! take, each other's row.

use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions};

use super::Config;
use super::error::InboxError;
use super::statements::Statements;

/// The server's time in Unix milliseconds (fixed for one statement).
macro_rules! now {
    () => {
        "floor(extract(epoch from now()) * 1000)::bigint"
    };
}

/// A pending retry, a new event or a replay.
macro_rules! set_pending {
    () => {
        "UPDATE suno_inbox_events SET state = 'pending', lease_token = NULL, "
    };
}

/// `rows` events of `(task_id, family, stage, outcome, body)` each, returning the keys
/// of those stored.
fn insert_many(rows: usize) -> String {
    use std::fmt::Write as _;
    let mut sql = String::with_capacity(160 + rows * 120);
    sql.push_str(
        "INSERT INTO suno_inbox_events \
         (task_id, family, stage, outcome, body, received_at, run_after) VALUES ",
    );
    for row in 0..rows {
        let at = row * 5;
        let comma = if row == 0 { "" } else { ", " };
        let _ = write!(
            sql,
            concat!("{}(${}, ${}, ${}, ${}, ${}, ", now!(), ", ", now!(), ")"),
            comma,
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
    migrations: super::migrate::POSTGRES,
    begin: "BEGIN",
    // The advisory lock that serializes migrations between replicas: 0x53554e4f49425831,
    // "SUNOIBX1".
    migration_lock: Some("SELECT pg_advisory_xact_lock(6004791780606892081)"),
    migration_applied: "SELECT 1 FROM suno_inbox_migrations WHERE version = $1",
    migration_record: "INSERT INTO suno_inbox_migrations (version, description) VALUES ($1, $2)",
    insert_many,
    lease: concat!(
        "WITH next AS (SELECT id FROM suno_inbox_events \
              WHERE state IN ('pending', 'running') AND run_after <= ",
        now!(),
        " ORDER BY run_after, id LIMIT $3 FOR UPDATE SKIP LOCKED) \
         UPDATE suno_inbox_events e \
         SET state = 'running', attempts = e.attempts + 1, run_after = ",
        now!(),
        " + $1, lease_token = $2 \
         FROM next WHERE e.id = next.id \
         RETURNING e.id, e.task_id, e.family, e.stage, e.body, e.attempts::bigint, ",
        now!(),
        " - e.received_at, e.outcome"
    ),
    heartbeat: concat!(
        "UPDATE suno_inbox_events SET run_after = ",
        now!(),
        " + $1 WHERE id = $2 AND lease_token = $3 AND state = 'running'"
    ),
    complete: concat!(
        "UPDATE suno_inbox_events SET state = 'done', finished_at = ",
        now!(),
        ", lease_token = NULL, last_error = NULL \
         WHERE id = $1 AND lease_token = $2 AND state = 'running'"
    ),
    retry: concat!(
        set_pending!(),
        "run_after = ",
        now!(),
        " + $1, last_error = $2 WHERE id = $3 AND lease_token = $4 AND state = 'running'"
    ),
    bury: concat!(
        "UPDATE suno_inbox_events SET state = 'dead', finished_at = ",
        now!(),
        ", lease_token = NULL, last_error = $1 \
         WHERE id = $2 AND lease_token = $3 AND state = 'running'"
    ),
    release: concat!(
        set_pending!(),
        "run_after = ",
        now!(),
        ", attempts = GREATEST(attempts - 1, 0) \
         WHERE id = $1 AND lease_token = $2 AND state = 'running'"
    ),
    // Other replicas may hold running events: they are left to their leases.
    take_back: None,
    replay_event: concat!(
        set_pending!(),
        "run_after = ",
        now!(),
        ", attempts = 0, finished_at = NULL, last_error = NULL \
         WHERE id = $1 AND state IN ('done', 'dead')"
    ),
    replay_dead: concat!(
        set_pending!(),
        "run_after = ",
        now!(),
        ", attempts = 0, finished_at = NULL, last_error = NULL WHERE state = 'dead'"
    ),
    replay_task: concat!(
        set_pending!(),
        "run_after = ",
        now!(),
        ", attempts = 0, finished_at = NULL, last_error = NULL \
         WHERE task_id = $1 AND state IN ('done', 'dead')"
    ),
    prune: concat!(
        "DELETE FROM suno_inbox_events WHERE id IN (SELECT id FROM suno_inbox_events \
         WHERE state IN ('done', 'dead') AND finished_at <= ",
        now!(),
        " - $1 ORDER BY finished_at LIMIT $2 FOR UPDATE SKIP LOCKED)"
    ),
    stats: concat!(
        "SELECT state, COUNT(*), ",
        now!(),
        " - MIN(received_at) FROM suno_inbox_events GROUP BY state"
    ),
    queue: concat!(
        "SELECT state, COUNT(*), ",
        now!(),
        " - MIN(received_at) FROM suno_inbox_events \
         WHERE state IN ('pending', 'running', 'dead') GROUP BY state"
    ),
    event: "SELECT id, task_id, family, stage, outcome, body, state, attempts::bigint, \
         last_error FROM suno_inbox_events WHERE id = $1",
    events_of_task: "SELECT id, task_id, family, stage, outcome, body, state, \
         attempts::bigint, last_error FROM suno_inbox_events WHERE task_id = $1 ORDER BY id",
};

#[derive(Clone, Debug)]
pub(crate) struct PgBackend {
    pool: PgPool,
}

impl PgBackend {
    /// The connection pool, for the other tables in the inbox's database.
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
}
