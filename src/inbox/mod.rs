//! The inbox (features `sqlite`, `postgres`): answer in milliseconds, process durably.
//!
//! In inbox mode ([`SunoCallbacksBuilder::inbox`](crate::SunoCallbacksBuilder::inbox))
//! stage 4 of the pipeline stores each verified callback in a database table, with one
//! atomic `INSERT … ON CONFLICT DO NOTHING` on its dedup key, and answers
//! `200 accepted` (or `200 duplicate`). Nothing else happens in the request. Workers
//! ([`Inbox::start_workers`]) then take the stored events one at a time under a lease,
//! run the same handlers as inline mode (with a much longer timeout), and mark each
//! event `done`, schedule a retry with exponential backoff and jitter, or move it to
//! the dead letters after [`max_attempts`](InboxBuilder::max_attempts) or
//! [`max_age`](InboxBuilder::max_age).
//!
//! **Delivery is at least once.** A worker that dies mid-handler (killed, power loss)
//! loses its lease, and the event runs again on another worker once the lease expires
//! (at once when a single-process SQLite inbox starts again). Handlers must be
//! idempotent, or take the inbox's own transaction ([`EventContext`]) so that their
//! database writes and the event's `done` commit together: then their effects in that
//! database happen exactly once.
//!
//! Backends:
//! - **SQLite** (`sqlite://path.db`): the embedded default, one file, one process.
//! - **PostgreSQL** (`postgres://…`): several replicas share one database; events are
//!   leased with `FOR UPDATE SKIP LOCKED`.
//!
//! The migrations under `migrations/{sqlite,postgres}/` ship with the crate and run
//! when the inbox connects (or by [`Inbox::migrate`]).
//!
//! ```no_run
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//! use suno_callback::SunoCallbacks;
//! use suno_callback::inbox::Inbox;
//!
//! let inbox = Inbox::builder()
//!     .concurrency(4)
//!     .handler_timeout(Duration::from_secs(600))
//!     .connect("sqlite://suno-inbox.db")
//!     .await?;
//! let callbacks = SunoCallbacks::builder()
//!     .hmac_key(std::env::var("SUNO_WEBHOOK_HMAC_KEY")?)
//!     .on_complete(|event| async move {
//!         // may take minutes: download the audio, transcode, ...
//!         println!("{} done", event.task_id());
//!         Ok(())
//!     })
//!     .inbox(inbox.clone())
//!     .build()?;
//! let workers = inbox.start_workers(&callbacks);
//! let app = axum::Router::new().route_service("/callbacks/suno", callbacks.service());
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app)
//!     .with_graceful_shutdown(async { let _ = tokio::signal::ctrl_c().await; })
//!     .await?;
//! workers.shutdown().await; // finishes or releases what it holds
//! # Ok(()) }
//! ```

mod admin;
mod backend;
mod context;
mod error;
mod intake;
#[cfg(feature = "sqlite")]
mod lock;
pub(crate) mod migrate;
#[cfg(feature = "postgres")]
mod postgres;
#[cfg(feature = "provider-api")]
mod registry;
mod retry;
mod rows;
#[cfg(feature = "sqlite")]
mod sqlite;
mod statements;
mod types;
mod worker;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
use tokio::time::timeout;

pub use self::admin::{
    COUNT_CAP, Count, DEFAULT_REPLAY_CAP, EventDetail, EventFilter, EventPage, EventRow,
    ExpectedRow, ExpectedSummary, InboxAdmin, LIST_ERROR_CHARS, MAX_PAGE, Minute, Overview,
};
pub use self::context::EventContext;
pub use self::error::InboxError;
#[cfg(feature = "provider-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "provider-api")))]
pub use self::registry::InboxRegistry;
pub use self::retry::RetryPolicy;
pub use self::types::{EventState, InboxStats, Replay, RunReport, RunResult, StoredEvent};
pub use self::worker::Workers;
/// The sqlx version this crate uses, for the types of [`EventContext`]'s transactions.
pub use sqlx;

use self::backend::Backend;
use self::intake::Intake;
use self::rows::NewEvent;
use crate::answer::Answer;
use crate::metrics::{self, InboxCount};
use crate::store::DedupKey;

/// How long a worker may run one handler by default (10 minutes).
pub const DEFAULT_INBOX_HANDLER_TIMEOUT: Duration = Duration::from_secs(600);
/// How long a lease on an event lasts by default; a live worker extends it every third
/// of this, so a dead worker's events are taken over within this time.
pub const DEFAULT_LEASE: Duration = Duration::from_secs(30);
/// How many handler runs an event gets by default before it is dead-lettered.
pub const DEFAULT_MAX_ATTEMPTS: u32 = 20;
/// How old an event may become by default before a failure dead-letters it.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(3 * 24 * 60 * 60);
/// How long done and dead events are kept by default.
pub const DEFAULT_PRUNE_AFTER: Duration = Duration::from_secs(14 * 24 * 60 * 60);

/// The inbox's settings.
#[derive(Clone, Debug)]
pub(crate) struct Config {
    pub(crate) concurrency: usize,
    pub(crate) handler_timeout: Duration,
    pub(crate) lease: Duration,
    pub(crate) poll_interval: Duration,
    pub(crate) max_attempts: u32,
    pub(crate) max_age: Duration,
    pub(crate) retry: RetryPolicy,
    pub(crate) prune_after: Duration,
    pub(crate) housekeeping_interval: Duration,
    pub(crate) store_timeout: Duration,
    pub(crate) shutdown_grace: Duration,
    pub(crate) max_connections: u32,
    pub(crate) migrate_on_start: bool,
}

type OutcomeHook = Arc<dyn Fn(&RunReport) + Send + Sync>;

struct Shared {
    backend: Backend,
    /// Stores the accepted events in batches.
    intake: Intake,
    config: Config,
    /// Wakes an idle local worker when an event is accepted.
    wake: Notify,
    on_outcome: Option<OutcomeHook>,
}

/// A durable inbox of callbacks on SQLite or PostgreSQL. Clones share the connection
/// pool.
///
/// Build one with [`Inbox::builder`]; mount it with
/// [`SunoCallbacksBuilder::inbox`](crate::SunoCallbacksBuilder::inbox); run its
/// workers with [`start_workers`](Self::start_workers). The other methods inspect and
/// maintain the stored events.
///
/// ```no_run
/// # async fn run() -> Result<(), suno_callback::inbox::InboxError> {
/// use suno_callback::inbox::{Inbox, Replay};
///
/// let inbox = Inbox::builder().connect("sqlite://suno-inbox.db").await?;
/// let stats = inbox.stats().await?;
/// println!("{} pending, {} dead", stats.pending, stats.dead);
/// let replayed = inbox.replay(Replay::Dead).await?;
/// println!("{replayed} dead events will run again");
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Inbox {
    shared: Arc<Shared>,
}

impl Inbox {
    /// A builder with the defaults: 4 workers, 10 min handler timeout, 30 s lease,
    /// 20 attempts, 3 days maximum age, 14 days before pruning.
    pub fn builder() -> InboxBuilder {
        InboxBuilder::default()
    }

    /// Runs the migrations that are not applied yet (done by
    /// [`connect`](InboxBuilder::connect) unless
    /// [`migrate_on_start(false)`](InboxBuilder::migrate_on_start)).
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or refuses the
    /// statements of a migration (none is then applied).
    pub async fn migrate(&self) -> Result<(), InboxError> {
        self.shared.backend.migrate().await
    }

    /// Stage 4 in inbox mode: store the event (atomic and deduped) and answer.
    pub(crate) async fn accept(&self, key: &DedupKey, body: &Bytes) -> Answer {
        let new = NewEvent::from_key(key, body);
        let stored = timeout(
            self.shared.config.store_timeout,
            self.shared.intake.store(&new, body),
        );
        match stored.await {
            Ok(Ok(true)) => {
                self.shared.wake.notify_one();
                tracing::info!(inbox_event = "accepted", "callback stored in the inbox");
                Answer::Accepted(key.clone())
            }
            Ok(Ok(false)) => {
                tracing::info!(inbox_event = "duplicate", "callback already in the inbox");
                Answer::Duplicate(key.clone())
            }
            Ok(Err(error)) => {
                tracing::warn!(%error, "inbox unavailable: callback not stored");
                Answer::InboxUnavailable(key.clone())
            }
            Err(_elapsed) => {
                tracing::warn!("inbox unavailable: storing the callback timed out");
                Answer::InboxUnavailable(key.clone())
            }
        }
    }

    /// Starts the configured number of workers and a housekeeper (pruning, queue
    /// metrics) on the current tokio runtime. They run the handlers of `callbacks`,
    /// through the same dispatch (timeout, panic catching) as inline mode, with this
    /// inbox's handler timeout. Stop them with [`Workers::shutdown`].
    pub fn start_workers(&self, callbacks: &crate::SunoCallbacks) -> Workers {
        worker::start(self.clone(), callbacks.handlers())
    }

    /// Puts done or dead events back to pending, with their attempts reset, so the
    /// workers run them again. Returns how many were replayed.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or refuses the
    /// statement.
    pub async fn replay(&self, which: Replay) -> Result<u64, InboxError> {
        let replayed = self.shared.backend.replay(&which).await?;
        if replayed > 0 {
            self.shared.wake.notify_one();
        }
        tracing::info!(inbox_event = "replayed", replayed, "inbox events replayed");
        Ok(replayed)
    }

    /// Deletes done and dead events finished longer ago than the configured
    /// [`prune_after`](InboxBuilder::prune_after); returns how many. The workers'
    /// housekeeper calls it every hour. It deletes in statements of at most 1,000
    /// events, the longest finished first, with a pause between them and each within
    /// [`store_timeout`](InboxBuilder::store_timeout), and at most 1,000,000 events
    /// per call (the next call takes the rest).
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached, refuses a
    /// statement or takes longer than the store timeout for one (what was pruned
    /// before stays pruned).
    pub async fn prune(&self) -> Result<u64, InboxError> {
        self.prune_older_than(self.shared.config.prune_after).await
    }

    /// Deletes done and dead events finished longer ago than `age`, in batches as
    /// [`prune`](Self::prune) does.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or refuses the
    /// statement.
    pub async fn prune_older_than(&self, age: Duration) -> Result<u64, InboxError> {
        self.shared
            .backend
            .prune(age, self.shared.config.store_timeout)
            .await
    }

    /// How many events are in each state, and the age of the oldest pending one. It
    /// counts the whole table (the done events too); the workers' housekeeper reads the
    /// pending, running and dead ones only.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or refuses the
    /// query.
    pub async fn stats(&self) -> Result<InboxStats, InboxError> {
        self.shared.backend.stats().await
    }

    /// [`stats`](Self::stats) without counting the done events (`done` is 0).
    pub(crate) async fn queue_stats(&self) -> Result<InboxStats, InboxError> {
        self.shared.backend.queue().await
    }

    /// One stored event, with its body exactly as received.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or refuses the
    /// query (`Ok(None)` when there is no event `id`).
    pub async fn event(&self, id: i64) -> Result<Option<StoredEvent>, InboxError> {
        self.shared.backend.event(id).await
    }

    /// Every stored event of a task, oldest first.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or refuses the
    /// query.
    pub async fn events_of_task(&self, task_id: &str) -> Result<Vec<StoredEvent>, InboxError> {
        self.shared.backend.events_of_task(task_id).await
    }

    /// Closes the connection pool (after [`Workers::shutdown`]).
    pub async fn close(&self) {
        self.shared.backend.close().await;
    }

    /// A dedup store on this inbox's connection pool, in its own database (tables
    /// created by the same migrations): replicas that share a PostgreSQL inbox then
    /// share their signature bindings without another engine.
    ///
    /// ```no_run
    /// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
    /// use suno_callback::SunoCallbacks;
    /// use suno_callback::inbox::Inbox;
    ///
    /// let inbox = Inbox::builder().connect("postgres://127.0.0.1:5432/app").await?;
    /// let callbacks = SunoCallbacks::builder()
    ///     .hmac_key("webhook-hmac-key")
    ///     .store(inbox.dedup_store())
    ///     .inbox(inbox.clone())
    ///     .build()?;
    /// # Ok(()) }
    /// ```
    pub fn dedup_store(&self) -> crate::store::SqlStore {
        match self.backend() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => crate::store::SqlStore::Sqlite(
                crate::store::SqliteStore::from_pool(backend.pool().clone()),
            ),
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => crate::store::SqlStore::Postgres(
                crate::store::PostgresStore::from_pool(backend.pool().clone()),
            ),
        }
    }

    pub(crate) fn backend(&self) -> &Backend {
        &self.shared.backend
    }

    pub(crate) fn config(&self) -> &Config {
        &self.shared.config
    }

    pub(crate) fn wake(&self) -> &Notify {
        &self.shared.wake
    }

    pub(crate) fn report(&self, report: &RunReport) {
        match report.result {
            RunResult::Retry { .. } => metrics::inbox(InboxCount::Retry, &report.family),
            RunResult::Dead => metrics::inbox(InboxCount::Dead, &report.family),
            _ => {}
        }
        if let Some(hook) = &self.shared.on_outcome {
            hook(report);
        }
    }
}

impl fmt::Debug for Inbox {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("backend", &self.shared.backend)
            .field("config", &self.shared.config)
            .finish_non_exhaustive()
    }
}

/// Configures an [`Inbox`] and connects it.
///
/// ```no_run
/// # async fn run() -> Result<(), suno_callback::inbox::InboxError> {
/// use std::time::Duration;
/// use suno_callback::inbox::{Inbox, RetryPolicy};
///
/// let inbox = Inbox::builder()
///     .concurrency(8)
///     .lease(Duration::from_secs(30))
///     .max_attempts(10)
///     .retry(RetryPolicy::default().scale(0.5))
///     .connect("postgres://127.0.0.1:5432/app")
///     .await?;
/// # Ok(()) }
/// ```
pub struct InboxBuilder {
    config: Config,
    on_outcome: Option<OutcomeHook>,
}

impl Default for InboxBuilder {
    fn default() -> Self {
        Self {
            config: Config {
                concurrency: 4,
                handler_timeout: DEFAULT_INBOX_HANDLER_TIMEOUT,
                lease: DEFAULT_LEASE,
                poll_interval: Duration::from_millis(500),
                max_attempts: DEFAULT_MAX_ATTEMPTS,
                max_age: DEFAULT_MAX_AGE,
                retry: RetryPolicy::default(),
                prune_after: DEFAULT_PRUNE_AFTER,
                housekeeping_interval: Duration::from_secs(30),
                store_timeout: Duration::from_secs(5),
                shutdown_grace: Duration::from_secs(30),
                max_connections: 8,
                migrate_on_start: true,
            },
            on_outcome: None,
        }
    }
}

impl InboxBuilder {
    /// How many events this process runs at once (default 4).
    #[must_use]
    pub fn concurrency(mut self, workers: usize) -> Self {
        self.config.concurrency = workers.max(1);
        self
    }

    /// How long one handler run may take (default 10 minutes) before it is dropped and
    /// the event retried.
    #[must_use]
    pub fn handler_timeout(mut self, timeout: Duration) -> Self {
        self.config.handler_timeout = timeout;
        self
    }

    /// How long a worker's lease on an event lasts (default 30 s). The worker extends
    /// it every third of this while the handler runs; when the worker dies, another
    /// takes the event over once the lease has run out.
    #[must_use]
    pub fn lease(mut self, lease: Duration) -> Self {
        self.config.lease = lease.max(Duration::from_millis(30));
        self
    }

    /// How often an idle worker looks for due events (default 500 ms). Events accepted
    /// by this process wake a worker at once.
    #[must_use]
    pub fn poll_interval(mut self, interval: Duration) -> Self {
        self.config.poll_interval = interval.max(Duration::from_millis(1));
        self
    }

    /// How many handler runs an event gets before it is dead-lettered (default 20).
    #[must_use]
    pub fn max_attempts(mut self, attempts: u32) -> Self {
        self.config.max_attempts = attempts.max(1);
        self
    }

    /// How old an event may become before a failure dead-letters it instead of
    /// scheduling a retry (default 3 days).
    #[must_use]
    pub fn max_age(mut self, age: Duration) -> Self {
        self.config.max_age = age;
        self
    }

    /// The delays between the runs of a failing event (default: 1 s doubling up to
    /// 1 h, with jitter).
    #[must_use]
    pub fn retry(mut self, policy: RetryPolicy) -> Self {
        self.config.retry = policy;
        self
    }

    /// How long done and dead events are kept before pruning (default 14 days). A
    /// pruned event is forgotten: the same callback delivered again is stored again.
    #[must_use]
    pub fn prune_after(mut self, age: Duration) -> Self {
        self.config.prune_after = age;
        self
    }

    /// How often the housekeeper logs the queue depth and the oldest pending age
    /// (default 30 s). It prunes every hour.
    #[must_use]
    pub fn housekeeping_interval(mut self, interval: Duration) -> Self {
        self.config.housekeeping_interval = interval.max(Duration::from_millis(10));
        self
    }

    /// How long storing one event may take in the request before the answer is `503`
    /// (default 5 s).
    #[must_use]
    pub fn store_timeout(mut self, timeout: Duration) -> Self {
        self.config.store_timeout = timeout;
        self
    }

    /// How long [`Workers::shutdown`] waits for running handlers before it drops them
    /// and releases their events (default 30 s).
    #[must_use]
    pub fn shutdown_grace(mut self, grace: Duration) -> Self {
        self.config.shutdown_grace = grace;
        self
    }

    /// The size of the connection pool (default 8).
    #[must_use]
    pub fn max_connections(mut self, connections: u32) -> Self {
        self.config.max_connections = connections.max(1);
        self
    }

    /// Whether [`connect`](Self::connect) runs the migrations (default `true`). With
    /// `false`, the pool also connects lazily, so an inbox can be built while its
    /// database is down (requests are answered `503` until it is up).
    #[must_use]
    pub fn migrate_on_start(mut self, migrate: bool) -> Self {
        self.config.migrate_on_start = migrate;
        self
    }

    /// Called after each handler run once its outcome is stored (the event is done,
    /// scheduled again, dead, or released), on the worker's task. Keep it short.
    #[must_use]
    pub fn on_outcome(mut self, hook: impl Fn(&RunReport) + Send + Sync + 'static) -> Self {
        self.on_outcome = Some(Arc::new(hook));
        self
    }

    /// Connects to `url` (`sqlite://path` or `postgres://…`; a missing SQLite file is
    /// created) and runs the migrations.
    ///
    /// # Errors
    ///
    /// [`InboxError::is_config`] when the URL cannot be read or names no enabled
    /// backend (`sqlite` or `postgres` feature); [`InboxError::unavailable`] when the
    /// database cannot be opened or reached, or a migration fails (neither is tried
    /// with [`migrate_on_start(false)`](Self::migrate_on_start)).
    pub async fn connect(self, url: &str) -> Result<Inbox, InboxError> {
        let backend = Backend::connect(url, &self.config).await?;
        self.finish(backend).await
    }

    /// Connects to SQLite with these options (WAL journal, `synchronous=FULL` and a
    /// busy timeout are set on top of them).
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the file cannot be opened or created, or a
    /// migration fails (neither is tried with
    /// [`migrate_on_start(false)`](Self::migrate_on_start)).
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn connect_sqlite(
        self,
        options: sqlx::sqlite::SqliteConnectOptions,
    ) -> Result<Inbox, InboxError> {
        let backend = Backend::connect_sqlite(options, &self.config).await?;
        self.finish(backend).await
    }

    /// Connects to PostgreSQL with these options (for example a `search_path` to keep
    /// the table in its own schema).
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or refuses the
    /// login, or a migration fails (neither is tried with
    /// [`migrate_on_start(false)`](Self::migrate_on_start)).
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn connect_postgres(
        self,
        options: sqlx::postgres::PgConnectOptions,
    ) -> Result<Inbox, InboxError> {
        let backend = Backend::connect_postgres(options, &self.config).await?;
        self.finish(backend).await
    }

    async fn finish(self, backend: Backend) -> Result<Inbox, InboxError> {
        if self.config.migrate_on_start {
            backend.migrate().await?;
        }
        Ok(Inbox {
            shared: Arc::new(Shared {
                intake: Intake::new(backend.clone(), backend.write_concurrency(&self.config)),
                backend,
                config: self.config,
                wake: Notify::new(),
                on_outcome: self.on_outcome,
            }),
        })
    }
}

impl fmt::Debug for InboxBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("InboxBuilder")
            .field("config", &self.config)
            .field("on_outcome", &self.on_outcome.is_some())
            .finish()
    }
}

#[cfg(all(test, feature = "sqlite"))]
mod tests {
    use super::*;

    /// The housekeeper's queue counts agree with the full counts, done events aside.
    #[tokio::test]
    async fn queue_stats_count_all_but_the_done_events() {
        let dir = std::env::temp_dir().join(format!(
            "suno_inbox_queue_{}",
            crate::store::ClaimToken::new_unique()
        ));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let url = format!("sqlite://{}", dir.join("inbox.db").display());
        let inbox = Inbox::builder().connect(&url).await.expect("inbox");
        let Backend::Sqlite(backend) = inbox.backend() else {
            unreachable!("a sqlite:// URL")
        };
        for (i, state) in [
            "done", "done", "done", "pending", "pending", "running", "dead",
        ]
        .iter()
        .enumerate()
        {
            sqlx::query(
                "INSERT INTO suno_inbox_events (task_id, family, stage, outcome, body, state, \
                 attempts, received_at, run_after) VALUES (?1, 'music', 'complete', 'success', \
                 X'7B7D', ?2, 0, ?3, 0)",
            )
            .bind(format!("t{i}"))
            .bind(*state)
            .bind(1_000 + i64::try_from(i).expect("small"))
            .execute(backend.pool())
            .await
            .expect("insert");
        }
        let all = inbox.stats().await.expect("stats");
        let queue = inbox.queue_stats().await.expect("queue");
        assert_eq!((all.done, queue.done), (3, 0));
        assert_eq!(
            (queue.pending, queue.running, queue.dead),
            (all.pending, all.running, all.dead)
        );
        assert_eq!((queue.pending, queue.running, queue.dead), (2, 1, 1));
        // Each reads the clock itself: the ages differ by the time between the two.
        let (Some(queue_age), Some(all_age)) = (queue.oldest_pending_age, all.oldest_pending_age)
        else {
            panic!("both see the oldest pending event: {queue:?} {all:?}");
        };
        assert!(
            queue_age.abs_diff(all_age) < Duration::from_secs(1),
            "{queue_age:?} vs {all_age:?}"
        );
        inbox.close().await;
        let _ = std::fs::remove_dir_all(&dir);
    }
}
