//! The tasks the application expects an outcome for: registered when submitted,
//! scheduled for polling, leased to one poller at a time, removed when final.
//!
//! [`MemoryRegistry`] is the default; `RedisRegistry` (feature `redis`) survives
//! restarts and shares the work between replicas.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::BoxError;
use crate::event::{ApiRoute, Family};

/// A boxed future of a registry call.
pub type RegistryFuture<'a, T> =
    Pin<Box<dyn Future<Output = Result<T, RegistryError>> + Send + 'a>>;

/// The current time in milliseconds since the Unix epoch.
pub(crate) fn unix_millis() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// `d` in milliseconds, saturating.
pub(crate) fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

/// One expected task: its id, family and route, and when it was registered.
///
/// ```
/// use suno_callback::{ApiRoute, Family};
/// use suno_callback::provider::ExpectedTask;
///
/// let task = ExpectedTask::new("2fac7b1e", Family::Music, 1_700_000_000_000);
/// assert_eq!(task.task_id(), "2fac7b1e");
/// assert_eq!(task.family(), Family::Music);
/// assert_eq!(task.route(), ApiRoute::Classic);
/// let jobs = task.with_route(ApiRoute::Jobs);
/// assert_eq!(jobs.route(), ApiRoute::Jobs);
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ExpectedTask {
    task_id: String,
    family: Family,
    route: ApiRoute,
    registered_at_ms: u64,
}

impl ExpectedTask {
    /// A task of `family` created on the classic route, registered at
    /// `registered_at_ms` (Unix milliseconds).
    pub fn new(task_id: impl Into<String>, family: Family, registered_at_ms: u64) -> Self {
        Self {
            task_id: task_id.into(),
            family,
            route: ApiRoute::Classic,
            registered_at_ms,
        }
    }
    /// The same task, created on `route`. A jobs-route task is polled at
    /// `/api/v1/jobs/recordInfo` whatever its family (which may be
    /// [`Family::Unknown`]: the answer's model tells it); a classic one at its
    /// family's endpoint.
    #[must_use]
    pub fn with_route(mut self, route: ApiRoute) -> Self {
        self.route = route;
        self
    }
    /// The route the task was created through.
    pub fn route(&self) -> ApiRoute {
        self.route
    }
    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }
    /// The task's family.
    pub fn family(&self) -> Family {
        self.family
    }
    /// When it was registered, in Unix milliseconds.
    pub fn registered_at_ms(&self) -> u64 {
        self.registered_at_ms
    }
}

/// A registry call that failed (the backing service is down).
#[derive(Debug)]
pub struct RegistryError {
    source: BoxError,
}

impl RegistryError {
    /// A failure with its cause.
    pub fn new(source: impl Into<BoxError>) -> Self {
        Self {
            source: source.into(),
        }
    }
}

impl fmt::Display for RegistryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "task registry unavailable: {}", self.source)
    }
}

impl std::error::Error for RegistryError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        Some(&*self.source)
    }
}

/// Where expected tasks are kept.
///
/// Implementing one: [`take_due`](Self::take_due) must be atomic per task (of two
/// concurrent callers, one gets a given task), which is what lets several replicas
/// share one registry.
pub trait TaskRegistry: fmt::Debug + Send + Sync + 'static {
    /// Registers `task`, first due at `due_ms`. Registering it again replaces it.
    /// Everything the task holds (id, family, route, registration time) comes back
    /// from [`take_due`](Self::take_due) as it was given.
    fn expect(&self, task: ExpectedTask, due_ms: u64) -> RegistryFuture<'_, ()>;

    /// Takes at most `limit` tasks due at `now_ms` and leases them: none of them is due
    /// again before `now_ms + lease_ms`, unless [`reschedule`](Self::reschedule)d.
    fn take_due(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> RegistryFuture<'_, Vec<ExpectedTask>>;

    /// Sets a task's next due time (no-op when the task is no longer registered).
    fn reschedule<'a>(&'a self, task_id: &'a str, due_ms: u64) -> RegistryFuture<'a, ()>;

    /// Removes a task: its outcome arrived.
    fn done<'a>(&'a self, task_id: &'a str) -> RegistryFuture<'a, ()>;

    /// The family of a registered task.
    fn family_of<'a>(&'a self, task_id: &'a str) -> RegistryFuture<'a, Option<Family>>;
}

/// A shared registry: the receiver and your own code can hold the same one.
impl<T: TaskRegistry> TaskRegistry for std::sync::Arc<T> {
    fn expect(&self, task: ExpectedTask, due_ms: u64) -> RegistryFuture<'_, ()> {
        (**self).expect(task, due_ms)
    }
    fn take_due(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> RegistryFuture<'_, Vec<ExpectedTask>> {
        (**self).take_due(now_ms, limit, lease_ms)
    }
    fn reschedule<'a>(&'a self, task_id: &'a str, due_ms: u64) -> RegistryFuture<'a, ()> {
        (**self).reschedule(task_id, due_ms)
    }
    fn done<'a>(&'a self, task_id: &'a str) -> RegistryFuture<'a, ()> {
        (**self).done(task_id)
    }
    fn family_of<'a>(&'a self, task_id: &'a str) -> RegistryFuture<'a, Option<Family>> {
        (**self).family_of(task_id)
    }
}

/// The registry of one process, lost on restart. At most `max_tasks` tasks (default
/// 100 000); registering more fails.
///
/// ```
/// use suno_callback::Family;
/// use suno_callback::provider::{ExpectedTask, MemoryRegistry, TaskRegistry};
///
/// # async fn run() -> Result<(), suno_callback::provider::RegistryError> {
/// let registry = MemoryRegistry::new();
/// registry.expect(ExpectedTask::new("t1", Family::Wav, 0), 10).await?;
/// assert!(registry.take_due(9, 10, 1_000).await?.is_empty());
/// assert_eq!(registry.take_due(10, 10, 1_000).await?.len(), 1);
/// // Leased: not due again before 1 010.
/// assert!(registry.take_due(500, 10, 1_000).await?.is_empty());
/// # Ok(()) }
/// ```
#[derive(Debug)]
pub struct MemoryRegistry {
    tasks: Mutex<HashMap<String, (ExpectedTask, u64)>>,
    max_tasks: usize,
}

/// The default most tasks a [`MemoryRegistry`] holds.
pub const DEFAULT_MAX_EXPECTED_TASKS: usize = 100_000;

impl Default for MemoryRegistry {
    fn default() -> Self {
        Self::new()
    }
}

impl MemoryRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::with_max_tasks(DEFAULT_MAX_EXPECTED_TASKS)
    }

    /// An empty registry holding at most `max_tasks` tasks.
    pub fn with_max_tasks(max_tasks: usize) -> Self {
        Self {
            tasks: Mutex::new(HashMap::new()),
            max_tasks,
        }
    }

    /// How many tasks are registered.
    pub fn len(&self) -> usize {
        self.lock().len()
    }

    /// Whether no task is registered.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, (ExpectedTask, u64)>> {
        self.tasks
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl TaskRegistry for MemoryRegistry {
    fn expect(&self, task: ExpectedTask, due_ms: u64) -> RegistryFuture<'_, ()> {
        let result = {
            let mut tasks = self.lock();
            if tasks.len() >= self.max_tasks && !tasks.contains_key(task.task_id()) {
                Err(RegistryError::new("memory registry is full"))
            } else {
                tasks.insert(task.task_id.clone(), (task, due_ms));
                Ok(())
            }
        };
        Box::pin(async move { result })
    }

    fn take_due(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> RegistryFuture<'_, Vec<ExpectedTask>> {
        let mut due: Vec<(u64, ExpectedTask)> = {
            let tasks = self.lock();
            tasks
                .values()
                .filter(|(_, due)| *due <= now_ms)
                .map(|(task, due)| (*due, task.clone()))
                .collect()
        };
        due.sort_by_key(|(due, _)| *due);
        due.truncate(limit);
        let mut tasks = self.lock();
        let taken = due
            .into_iter()
            .filter_map(|(_, task)| {
                let entry = tasks.get_mut(task.task_id())?;
                (entry.1 <= now_ms).then(|| {
                    entry.1 = now_ms.saturating_add(lease_ms);
                    task
                })
            })
            .collect();
        Box::pin(async move { Ok(taken) })
    }

    fn reschedule<'a>(&'a self, task_id: &'a str, due_ms: u64) -> RegistryFuture<'a, ()> {
        if let Some(entry) = self.lock().get_mut(task_id) {
            entry.1 = due_ms;
        }
        Box::pin(async { Ok(()) })
    }

    fn done<'a>(&'a self, task_id: &'a str) -> RegistryFuture<'a, ()> {
        self.lock().remove(task_id);
        Box::pin(async { Ok(()) })
    }

    fn family_of<'a>(&'a self, task_id: &'a str) -> RegistryFuture<'a, Option<Family>> {
        let family = self.lock().get(task_id).map(|(task, _)| task.family);
        Box::pin(async move { Ok(family) })
    }
}
