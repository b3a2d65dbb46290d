//! What a handler run by an inbox worker can learn about its run, and the inbox's own
//! transaction it can write in, so that its writes and the event's `done` commit
//! together.

use std::fmt;
use std::sync::Arc;

use tokio::sync::{Mutex, MutexGuard};

use super::backend::{Backend, Tx};
use super::error::InboxError;

tokio::task_local! {
    static CURRENT: EventContext;
}

struct Inner {
    id: i64,
    attempt: u32,
    task_id: String,
    family: String,
    stage: String,
    backend: Backend,
    tx: Mutex<Option<Tx>>,
}

/// The run of one stored event, as seen from inside its handler.
///
/// [`EventContext::current`] is `Some` while an inbox worker runs a handler (on the
/// handler's own task; a task the handler spawns does not inherit it). A handler may
/// take the inbox's transaction ([`sqlite_transaction`](Self::sqlite_transaction) or
/// [`postgres_transaction`](Self::postgres_transaction)): the worker commits it
/// together with the event's `done` when the handler succeeds, and rolls it back when
/// the handler fails, panics or times out, or when the worker lost its lease. The
/// handler's writes in it therefore happen exactly once. Keep the work done while
/// holding it short: on SQLite it holds the database's write lock.
///
/// ```no_run
/// use suno_callback::inbox::EventContext;
/// use suno_callback::{CallbackEvent, HandlerError};
///
/// async fn on_complete(event: CallbackEvent) -> Result<(), HandlerError> {
///     let Some(context) = EventContext::current() else {
///         return Err(HandlerError::msg("not run by an inbox worker"));
///     };
///     let mut tx = context.sqlite_transaction().await.map_err(HandlerError::new)?;
///     sqlx::query("INSERT INTO songs (task_id, tracks) VALUES (?1, ?2)")
///         .bind(event.task_id())
///         .bind(event.tracks().len() as i64)
///         .execute(&mut *tx)
///         .await?;
///     Ok(()) // committed with the event's `done`
/// }
/// # use suno_callback::inbox::sqlx;
/// ```
#[derive(Clone)]
pub struct EventContext {
    inner: Arc<Inner>,
}

impl EventContext {
    pub(crate) fn new(
        id: i64,
        attempt: u32,
        task_id: String,
        family: String,
        stage: String,
        backend: Backend,
    ) -> Self {
        Self {
            inner: Arc::new(Inner {
                id,
                attempt,
                task_id,
                family,
                stage,
                backend,
                tx: Mutex::new(None),
            }),
        }
    }

    /// The context of the inbox handler run on this task, if any.
    pub fn current() -> Option<Self> {
        CURRENT.try_with(Clone::clone).ok()
    }

    /// Runs `future` with `self` as the current context.
    pub(crate) async fn scope<F: Future>(self, future: F) -> F::Output {
        CURRENT.scope(self, future).await
    }

    /// The stored event's id.
    pub fn id(&self) -> i64 {
        self.inner.id
    }

    /// Which run of the event this is, from 1.
    pub fn attempt(&self) -> u32 {
        self.inner.attempt
    }

    /// The event's task id.
    pub fn task_id(&self) -> &str {
        &self.inner.task_id
    }

    /// The event's family (`music`, `wav`, …, `unknown`).
    pub fn family(&self) -> &str {
        &self.inner.family
    }

    /// The event's key stage (`""` for families without stages).
    pub fn stage(&self) -> &str {
        &self.inner.stage
    }

    /// The inbox's SQLite transaction for this run, begun on first use. Its writes
    /// commit with the event's `done`.
    ///
    /// # Errors
    ///
    /// [`InboxError::is_unavailable`] when the transaction cannot be begun (the
    /// database cannot be reached or refuses it), [`InboxError::is_wrong_backend`] when
    /// the inbox is on PostgreSQL.
    #[cfg(feature = "sqlite")]
    #[cfg_attr(docsrs, doc(cfg(feature = "sqlite")))]
    pub async fn sqlite_transaction(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, sqlx::SqliteConnection>, InboxError> {
        let guard = self.transaction().await?;
        MutexGuard::try_map(guard, |tx| match tx {
            #[allow(unreachable_patterns)]
            Some(Tx::Sqlite(tx)) => Some(&mut **tx),
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .map_err(|_| InboxError::wrong_backend())
    }

    /// The inbox's PostgreSQL transaction for this run, begun on first use. Its writes
    /// commit with the event's `done`.
    ///
    /// # Errors
    ///
    /// [`InboxError::is_unavailable`] when the transaction cannot be begun (the
    /// database cannot be reached or refuses it), [`InboxError::is_wrong_backend`] when
    /// the inbox is on SQLite.
    #[cfg(feature = "postgres")]
    #[cfg_attr(docsrs, doc(cfg(feature = "postgres")))]
    pub async fn postgres_transaction(
        &self,
    ) -> Result<tokio::sync::MappedMutexGuard<'_, sqlx::PgConnection>, InboxError> {
        let guard = self.transaction().await?;
        MutexGuard::try_map(guard, |tx| match tx {
            #[allow(unreachable_patterns)]
            Some(Tx::Postgres(tx)) => Some(&mut **tx),
            #[allow(unreachable_patterns)]
            _ => None,
        })
        .map_err(|_| InboxError::wrong_backend())
    }

    async fn transaction(&self) -> Result<MutexGuard<'_, Option<Tx>>, InboxError> {
        let mut guard = self.inner.tx.lock().await;
        if guard.is_none() {
            *guard = Some(self.inner.backend.begin().await?);
        }
        Ok(guard)
    }

    /// The transaction the handler took, if any, for the worker to settle.
    pub(crate) async fn take_transaction(&self) -> Option<Tx> {
        self.inner.tx.lock().await.take()
    }
}

impl fmt::Debug for EventContext {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventContext")
            .field("id", &self.inner.id)
            .field("attempt", &self.inner.attempt)
            .field("task_id", &self.inner.task_id)
            .field("family", &self.inner.family)
            .field("stage", &self.inner.stage)
            .finish_non_exhaustive()
    }
}
