//! The registry of expected tasks in the inbox's database (features `provider-api`
//! and `sqlite` or `postgres`): it survives restarts with the inbox, and replicas that
//! share a PostgreSQL inbox share it, each task polled by one replica at a time.

use std::fmt;

use super::Inbox;
use super::backend::Backend;
use crate::event::{ApiRoute, Family};
use crate::provider::{ExpectedTask, RegistryError, SETTLED_FAMILY_TTL, TaskRegistry};
use crate::provider::{cut_poll_answer, millis, unix_millis};

/// The registry's statements in one backend's placeholder syntax.
struct Statements {
    /// Registers a task, or replaces its registration.
    expect: &'static str,
    /// Takes the due tasks and moves them a lease ahead, in one statement.
    take_due: &'static str,
    reschedule: &'static str,
    /// Reschedules task `$1` to `$2` and keeps its last poll's answer `$3`, polled at `$4`.
    reschedule_after_poll: &'static str,
    /// Forgets at most 100 of the tasks settled before `$1`, the oldest first (each
    /// `done` keeps one, so this keeps up without a long delete).
    forget_settled: &'static str,
    /// Keeps the family of task `$1` among the settled tasks, settled at `$2`: the
    /// family it was keyed as (`$3`), else the registered one.
    keep_settled: &'static str,
    done: &'static str,
    /// The family of registered task `$1`, else of one settled at `$2` or later.
    family_of: &'static str,
}

/// PostgreSQL: `FOR UPDATE SKIP LOCKED` lets concurrent replicas take disjoint tasks
/// without waiting for each other.
#[cfg(feature = "postgres")]
const POSTGRES: Statements = Statements {
    expect: "INSERT INTO suno_expected_tasks (task_id, family, registered_at, due_at, route) \
         VALUES ($1, $2, $3, $4, $5) \
         ON CONFLICT (task_id) DO UPDATE SET family = excluded.family, \
         registered_at = excluded.registered_at, due_at = excluded.due_at, \
         route = excluded.route, last_poll = NULL, last_polled_at = NULL",
    take_due: "UPDATE suno_expected_tasks SET due_at = $3 \
         WHERE task_id IN (SELECT task_id FROM suno_expected_tasks WHERE due_at <= $1 \
         ORDER BY due_at LIMIT $2 FOR UPDATE SKIP LOCKED) \
         RETURNING task_id, family, registered_at, route",
    reschedule: "UPDATE suno_expected_tasks SET due_at = $2 WHERE task_id = $1",
    reschedule_after_poll: "UPDATE suno_expected_tasks SET due_at = $2, last_poll = $3, \
         last_polled_at = $4 WHERE task_id = $1",
    forget_settled: "DELETE FROM suno_settled_tasks WHERE task_id IN (SELECT task_id \
         FROM suno_settled_tasks WHERE settled_at < $1 ORDER BY settled_at LIMIT 100)",
    keep_settled: "INSERT INTO suno_settled_tasks (task_id, family, settled_at) \
         SELECT task_id, COALESCE($3, family), $2 FROM suno_expected_tasks \
         WHERE task_id = $1 \
         ON CONFLICT (task_id) DO UPDATE SET family = excluded.family, \
         settled_at = excluded.settled_at",
    done: "DELETE FROM suno_expected_tasks WHERE task_id = $1",
    family_of: "SELECT COALESCE(\
         (SELECT family FROM suno_expected_tasks WHERE task_id = $1), \
         (SELECT family FROM suno_settled_tasks WHERE task_id = $1 AND settled_at >= $2))",
};

/// SQLite runs one writer at a time, so the `UPDATE … RETURNING` is atomic as it is.
#[cfg(feature = "sqlite")]
const SQLITE: Statements = Statements {
    expect: "INSERT INTO suno_expected_tasks (task_id, family, registered_at, due_at, route) \
         VALUES (?1, ?2, ?3, ?4, ?5) \
         ON CONFLICT (task_id) DO UPDATE SET family = excluded.family, \
         registered_at = excluded.registered_at, due_at = excluded.due_at, \
         route = excluded.route, last_poll = NULL, last_polled_at = NULL",
    take_due: "UPDATE suno_expected_tasks SET due_at = ?3 \
         WHERE task_id IN (SELECT task_id FROM suno_expected_tasks WHERE due_at <= ?1 \
         ORDER BY due_at LIMIT ?2) \
         RETURNING task_id, family, registered_at, route",
    reschedule: "UPDATE suno_expected_tasks SET due_at = ?2 WHERE task_id = ?1",
    reschedule_after_poll: "UPDATE suno_expected_tasks SET due_at = ?2, last_poll = ?3, \
         last_polled_at = ?4 WHERE task_id = ?1",
    forget_settled: "DELETE FROM suno_settled_tasks WHERE task_id IN (SELECT task_id \
         FROM suno_settled_tasks WHERE settled_at < ?1 ORDER BY settled_at LIMIT 100)",
    keep_settled: "INSERT INTO suno_settled_tasks (task_id, family, settled_at) \
         SELECT task_id, COALESCE(?3, family), ?2 FROM suno_expected_tasks \
         WHERE task_id = ?1 \
         ON CONFLICT (task_id) DO UPDATE SET family = excluded.family, \
         settled_at = excluded.settled_at",
    done: "DELETE FROM suno_expected_tasks WHERE task_id = ?1",
    family_of: "SELECT COALESCE(\
         (SELECT family FROM suno_expected_tasks WHERE task_id = ?1), \
         (SELECT family FROM suno_settled_tasks WHERE task_id = ?1 AND settled_at >= ?2))",
};

/// A [`TaskRegistry`] in the inbox's database: the table `suno_expected_tasks`,
/// created by the inbox's migrations. Get it from [`Inbox::task_registry`].
///
/// Taking the due tasks moves them a lease ahead in the same statement, which is the
/// per-task lease: of two replicas taking at once, each task goes to one, and a replica
/// that dies mid-poll leaves the task due again when the lease ends. The table has no
/// bound of its own, as Redis has none: it holds the tasks registered and not yet
/// final (and `suno_settled_tasks` the families of those settled in the last
/// [`SETTLED_FAMILY_TTL`], for a late callback that names none), and the
/// [`Reconciler`](crate::provider::Reconciler) removes a task it reports
/// overdue (after [`max_age`](crate::provider::ReconcilerBuilder::max_age), 14 days by
/// default). Each row keeps the task's route (`classic`, `jobs`; rows written before
/// the route was kept are classic). A row whose family or route this version does not
/// know (written by a newer one) is skipped with a `warn` line, never a panic, and the
/// other tasks are taken as usual.
///
/// ```no_run
/// use suno_callback::SunoCallbacks;
/// use suno_callback::inbox::Inbox;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let inbox = Inbox::builder().connect("postgres://127.0.0.1:5432/app").await?;
/// let callbacks = SunoCallbacks::builder()
///     .hmac_key("webhook-hmac-key")
///     .task_registry(inbox.task_registry())
///     .inbox(inbox.clone())
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct InboxRegistry {
    backend: Backend,
}

impl fmt::Debug for InboxRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxRegistry")
            .field("backend", &self.backend)
            .finish()
    }
}

impl Inbox {
    /// The registry of expected tasks kept in this inbox's database, for
    /// [`SunoCallbacksBuilder::task_registry`](crate::SunoCallbacksBuilder::task_registry)
    /// and the [`Reconciler`](crate::provider::Reconciler).
    pub fn task_registry(&self) -> InboxRegistry {
        InboxRegistry {
            backend: self.backend().clone(),
        }
    }
}

/// A time in milliseconds as the database's signed 64-bit integer, saturating.
fn db_millis(ms: u64) -> i64 {
    i64::try_from(ms).unwrap_or(i64::MAX)
}

/// A row of `(task_id, family, registered_at, route)`, or `None` (logged) if
/// unreadable.
fn read_task(
    task_id: String,
    family: &str,
    registered_at: i64,
    route: &str,
) -> Option<ExpectedTask> {
    let family = parse_family(&task_id, family)?;
    let Some(route) = ApiRoute::from_name(route) else {
        tracing::warn!(
            task_id = ?crate::untrusted::Untrusted(&task_id),
            route = ?crate::untrusted::Untrusted(route),
            "expected task of an unknown route in the inbox registry; skipped"
        );
        return None;
    };
    let registered_at = u64::try_from(registered_at).unwrap_or(0);
    Some(ExpectedTask::new(task_id, family, registered_at).with_route(route))
}

/// The stored family of `task_id`, or `None` (logged) if this version does not know it.
fn parse_family(task_id: &str, family: &str) -> Option<Family> {
    let parsed = crate::provider::stored_family(family);
    if parsed.is_none() {
        tracing::warn!(
            task_id = ?crate::untrusted::Untrusted(task_id),
            family = ?crate::untrusted::Untrusted(family),
            "expected task of an unknown family in the inbox registry; skipped"
        );
    }
    parsed
}

/// Runs `$body` with `$pool` and `$sql` (the [`Statements`]) of the backend in use.
macro_rules! with_pool {
    ($backend:expr, $pool:ident, $sql:ident => $body:expr) => {
        match $backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => {
                let ($pool, $sql) = (backend.pool(), &SQLITE);
                $body
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => {
                let ($pool, $sql) = (backend.pool(), &POSTGRES);
                $body
            }
        }
    };
}

impl InboxRegistry {
    /// The statements of [`done`](TaskRegistry::done), keeping `keyed_as` as the
    /// settled family when given.
    async fn settle(&self, task_id: &str, keyed_as: Option<Family>) -> Result<(), RegistryError> {
        let now = unix_millis();
        let cutoff = db_millis(now.saturating_sub(millis(SETTLED_FAMILY_TTL)));
        with_pool!(&self.backend, pool, sql => {
            let kept = sqlx::query(sql.keep_settled)
                .bind(task_id)
                .bind(db_millis(now))
                .bind(keyed_as.map(Family::as_str))
                .execute(pool)
                .await
                .map_err(RegistryError::new)?
                .rows_affected();
            if kept == 0 {
                return Ok(());
            }
            sqlx::query(sql.done)
                .bind(task_id)
                .execute(pool)
                .await
                .map_err(RegistryError::new)?;
            sqlx::query(sql.forget_settled)
                .bind(cutoff)
                .execute(pool)
                .await
                .map_err(RegistryError::new)?;
        });
        Ok(())
    }
}

impl TaskRegistry for InboxRegistry {
    async fn expect(&self, task: ExpectedTask, due_ms: u64) -> Result<(), RegistryError> {
        with_pool!(&self.backend, pool, sql => {
            sqlx::query(sql.expect)
                .bind(task.task_id())
                .bind(task.family().as_str())
                .bind(db_millis(task.registered_at_ms()))
                .bind(db_millis(due_ms))
                .bind(task.route().as_str())
                .execute(pool)
                .await
                .map_err(RegistryError::new)?;
        });
        Ok(())
    }

    async fn take_due(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> Result<Vec<ExpectedTask>, RegistryError> {
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        let leased_until = db_millis(now_ms.saturating_add(lease_ms));
        let rows: Vec<(String, String, i64, String)> = with_pool!(&self.backend, pool, sql => {
            sqlx::query_as(sql.take_due)
                .bind(db_millis(now_ms))
                .bind(limit)
                .bind(leased_until)
                .fetch_all(pool)
                .await
                .map_err(RegistryError::new)?
        });
        Ok(rows
            .into_iter()
            .filter_map(|(task_id, family, registered_at, route)| {
                read_task(task_id, &family, registered_at, &route)
            })
            .collect())
    }

    async fn reschedule(&self, task_id: &str, due_ms: u64) -> Result<(), RegistryError> {
        with_pool!(&self.backend, pool, sql => {
            sqlx::query(sql.reschedule)
                .bind(task_id)
                .bind(db_millis(due_ms))
                .execute(pool)
                .await
                .map_err(RegistryError::new)?;
        });
        Ok(())
    }

    /// One statement: the next due time, the answer and the time of the poll.
    async fn reschedule_after_poll(
        &self,
        task_id: &str,
        due_ms: u64,
        answer: &str,
    ) -> Result<(), RegistryError> {
        // Whoever calls it may pass anything: the row keeps no more than the bound.
        let answer = cut_poll_answer(answer);
        with_pool!(&self.backend, pool, sql => {
            sqlx::query(sql.reschedule_after_poll)
                .bind(task_id)
                .bind(db_millis(due_ms))
                .bind(answer.as_ref())
                .bind(db_millis(unix_millis()))
                .execute(pool)
                .await
                .map_err(RegistryError::new)?;
        });
        Ok(())
    }

    /// Keeps the task's family among the settled ones, then removes it from the
    /// expected ones, then forgets at most 100 tasks settled longer than
    /// [`SETTLED_FAMILY_TTL`] ago. A task that was not registered costs the first
    /// statement only. In this order a reader always finds the family in one of the
    /// tables, and a process that stops between two statements leaves the task
    /// registered and settled (polled once more, then done again), never unknown.
    async fn done(&self, task_id: &str) -> Result<(), RegistryError> {
        self.settle(task_id, None).await
    }

    async fn done_as(&self, task_id: &str, keyed_as: Family) -> Result<(), RegistryError> {
        self.settle(task_id, Some(keyed_as)).await
    }

    async fn family_of(&self, task_id: &str) -> Result<Option<Family>, RegistryError> {
        let cutoff = db_millis(unix_millis().saturating_sub(millis(SETTLED_FAMILY_TTL)));
        let family: Option<String> = with_pool!(&self.backend, pool, sql => {
            sqlx::query_scalar(sql.family_of)
                .bind(task_id)
                .bind(cutoff)
                .fetch_one(pool)
                .await
                .map_err(RegistryError::new)?
        });
        Ok(family.and_then(|family| parse_family(task_id, &family)))
    }
}
