//! The tasks the application expects an outcome for: registered when submitted,
//! scheduled for polling, leased to one poller at a time, removed when final.
//!
//! [`MemoryRegistry`] is the default; `RedisRegistry` (feature `redis`) survives
//! restarts and shares the work between replicas.

use std::collections::{HashMap, VecDeque};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::error::BoxError;
use crate::event::{ApiRoute, Family};

/// A boxed future of a registry call, for the object-safe [`DynRegistry`].
type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, RegistryError>> + Send + 'a>>;

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

/// The longest line [`TaskRegistry::reschedule_after_poll`] is given, in characters.
pub const MAX_POLL_ANSWER_CHARS: usize = 240;

/// `answer` cut to [`MAX_POLL_ANSWER_CHARS`] characters (at a character boundary), its
/// control characters (a NUL, which PostgreSQL's text refuses, among them) shown as
/// spaces: a poll's answer quotes the provider's text.
pub(crate) fn cut_poll_answer(answer: &str) -> std::borrow::Cow<'_, str> {
    let cut = match answer.char_indices().nth(MAX_POLL_ANSWER_CHARS) {
        Some((end, _)) => &answer[..end],
        None => answer,
    };
    if cut.chars().any(char::is_control) {
        cut.chars()
            .map(|c| if c.is_control() { ' ' } else { c })
            .collect::<String>()
            .into()
    } else {
        cut.into()
    }
}

/// Where expected tasks are kept: a small trait in [`DedupStore`]'s shape (each call
/// an `async fn` returning `Send` futures, no macro, no boxing of yours), with one
/// conformance suite (`testing::registry_conformance`, feature `testing`).
///
/// Implementing one: [`take_due`](Self::take_due) must be atomic per task (of two
/// concurrent callers, one gets a given task), which is what lets several replicas
/// share one registry; every field of an [`ExpectedTask`] (its route included) must
/// come back as it was registered.
///
/// ```
/// use std::collections::HashMap;
/// use std::sync::Mutex;
/// use suno_callback::Family;
/// use suno_callback::provider::{ExpectedTask, RegistryError, TaskRegistry};
///
/// /// Tasks and their due times behind one lock: every call is atomic; and the
/// /// families of the tasks done (a real one forgets them after `SETTLED_FAMILY_TTL`).
/// #[derive(Debug, Default)]
/// struct MyRegistry {
///     tasks: Mutex<HashMap<String, (ExpectedTask, u64)>>,
///     settled: Mutex<HashMap<String, Family>>,
/// }
///
/// impl TaskRegistry for MyRegistry {
///     async fn expect(&self, task: ExpectedTask, due_ms: u64) -> Result<(), RegistryError> {
///         self.tasks.lock().unwrap().insert(task.task_id().to_owned(), (task, due_ms));
///         Ok(())
///     }
///     async fn take_due(&self, now_ms: u64, limit: usize, lease_ms: u64)
///         -> Result<Vec<ExpectedTask>, RegistryError> {
///         let mut tasks = self.tasks.lock().unwrap();
///         let mut due: Vec<_> = tasks.values().filter(|(_, at)| *at <= now_ms).cloned().collect();
///         due.sort_by_key(|(_, at)| *at);
///         due.truncate(limit);
///         for (task, _) in &due {
///             if let Some(entry) = tasks.get_mut(task.task_id()) {
///                 entry.1 = now_ms + lease_ms;
///             }
///         }
///         Ok(due.into_iter().map(|(task, _)| task).collect())
///     }
///     async fn reschedule(&self, task_id: &str, due_ms: u64) -> Result<(), RegistryError> {
///         if let Some(entry) = self.tasks.lock().unwrap().get_mut(task_id) {
///             entry.1 = due_ms;
///         }
///         Ok(())
///     }
///     async fn done(&self, task_id: &str) -> Result<(), RegistryError> {
///         if let Some((task, _)) = self.tasks.lock().unwrap().remove(task_id) {
///             self.settled.lock().unwrap().insert(task_id.to_owned(), task.family());
///         }
///         Ok(())
///     }
///     async fn family_of(&self, task_id: &str) -> Result<Option<Family>, RegistryError> {
///         let registered = self.tasks.lock().unwrap().get(task_id).map(|(task, _)| task.family());
///         Ok(registered.or_else(|| self.settled.lock().unwrap().get(task_id).copied()))
///     }
/// }
///
/// # #[cfg(feature = "testing")]
/// # tokio::runtime::Builder::new_multi_thread().enable_all().build().unwrap().block_on(
/// suno_callback::testing::registry_conformance::run_all(std::sync::Arc::new(MyRegistry::default()))
/// # );
/// ```
///
/// [`DedupStore`]: crate::store::DedupStore
pub trait TaskRegistry: fmt::Debug + Send + Sync + 'static {
    /// Registers `task`, first due at `due_ms`. Registering it again replaces it.
    /// Everything the task holds (id, family, route, registration time) comes back
    /// from [`take_due`](Self::take_due) as it was given.
    fn expect(
        &self,
        task: ExpectedTask,
        due_ms: u64,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Takes at most `limit` tasks due at `now_ms` and leases them: none of them is due
    /// again before `now_ms + lease_ms`, unless [`reschedule`](Self::reschedule)d.
    fn take_due(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> impl Future<Output = Result<Vec<ExpectedTask>, RegistryError>> + Send;

    /// Sets a task's next due time (no-op when the task is no longer registered).
    fn reschedule(
        &self,
        task_id: &str,
        due_ms: u64,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// Sets a task's next due time after a poll that did not settle it, and keeps
    /// `answer`, a short line on what that poll got (`"pending: nothing to deliver
    /// yet"`, `"request failed: …"`, at most [`MAX_POLL_ANSWER_CHARS`] characters),
    /// for an operator to read. The default only [`reschedule`](Self::reschedule)s;
    /// the inbox's registry keeps the line, and the console shows it.
    fn reschedule_after_poll(
        &self,
        task_id: &str,
        due_ms: u64,
        answer: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        let _ = answer;
        self.reschedule(task_id, due_ms)
    }

    /// Removes a task: its outcome arrived. It is never due again, but its family
    /// should stay known to [`family_of`](Self::family_of) for
    /// [`SETTLED_FAMILY_TTL`]: a late callback of the task that names no family (a
    /// failure on the shared path) takes it, so it makes the key the poll made, on
    /// whichever replica it arrives. The crate's registries all keep it.
    fn done(&self, task_id: &str) -> impl Future<Output = Result<(), RegistryError>> + Send;

    /// [`done`](Self::done) for a task whose final outcome reached the handlers keyed
    /// with `keyed_as`, which is the family to keep for [`family_of`](Self::family_of)
    /// (a shapeless failure keyed [`Family::Unknown`] keeps `Unknown`, so its
    /// redeliveries on any replica keep that key). The default is `done`, which keeps
    /// the registered family; the crate's registries keep `keyed_as`.
    fn done_as(
        &self,
        task_id: &str,
        keyed_as: Family,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        let _ = keyed_as;
        self.done(task_id)
    }

    /// The family of a registered task, or of one [`done`](Self::done) less than
    /// [`SETTLED_FAMILY_TTL`] ago.
    fn family_of(
        &self,
        task_id: &str,
    ) -> impl Future<Output = Result<Option<Family>, RegistryError>> + Send;
}

/// A shared registry: the receiver and your own code can hold the same one.
impl<T: TaskRegistry> TaskRegistry for std::sync::Arc<T> {
    fn expect(
        &self,
        task: ExpectedTask,
        due_ms: u64,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        (**self).expect(task, due_ms)
    }
    fn take_due(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> impl Future<Output = Result<Vec<ExpectedTask>, RegistryError>> + Send {
        (**self).take_due(now_ms, limit, lease_ms)
    }
    fn reschedule(
        &self,
        task_id: &str,
        due_ms: u64,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        (**self).reschedule(task_id, due_ms)
    }
    fn reschedule_after_poll(
        &self,
        task_id: &str,
        due_ms: u64,
        answer: &str,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        (**self).reschedule_after_poll(task_id, due_ms, answer)
    }
    fn done(&self, task_id: &str) -> impl Future<Output = Result<(), RegistryError>> + Send {
        (**self).done(task_id)
    }
    fn done_as(
        &self,
        task_id: &str,
        keyed_as: Family,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        (**self).done_as(task_id, keyed_as)
    }
    fn family_of(
        &self,
        task_id: &str,
    ) -> impl Future<Output = Result<Option<Family>, RegistryError>> + Send {
        (**self).family_of(task_id)
    }
}

/// The object-safe form of [`TaskRegistry`] the receiver and the reconciler store.
pub(crate) trait DynRegistry: Send + Sync + 'static {
    fn expect_boxed(&self, task: ExpectedTask, due_ms: u64) -> BoxFuture<'_, ()>;
    fn take_due_boxed(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> BoxFuture<'_, Vec<ExpectedTask>>;
    fn reschedule_after_poll_boxed<'a>(
        &'a self,
        task_id: &'a str,
        due_ms: u64,
        answer: &'a str,
    ) -> BoxFuture<'a, ()>;
    fn done_boxed<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, ()>;
    fn done_as_boxed<'a>(&'a self, task_id: &'a str, keyed_as: Family) -> BoxFuture<'a, ()>;
    fn family_of_boxed<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Option<Family>>;
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result;
}

impl<R: TaskRegistry> DynRegistry for R {
    fn expect_boxed(&self, task: ExpectedTask, due_ms: u64) -> BoxFuture<'_, ()> {
        Box::pin(self.expect(task, due_ms))
    }
    fn take_due_boxed(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> BoxFuture<'_, Vec<ExpectedTask>> {
        Box::pin(self.take_due(now_ms, limit, lease_ms))
    }
    fn reschedule_after_poll_boxed<'a>(
        &'a self,
        task_id: &'a str,
        due_ms: u64,
        answer: &'a str,
    ) -> BoxFuture<'a, ()> {
        Box::pin(self.reschedule_after_poll(task_id, due_ms, answer))
    }
    fn done_boxed<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, ()> {
        Box::pin(self.done(task_id))
    }
    fn done_as_boxed<'a>(&'a self, task_id: &'a str, keyed_as: Family) -> BoxFuture<'a, ()> {
        Box::pin(self.done_as(task_id, keyed_as))
    }
    fn family_of_boxed<'a>(&'a self, task_id: &'a str) -> BoxFuture<'a, Option<Family>> {
        Box::pin(self.family_of(task_id))
    }
    fn debug(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(self, f)
    }
}

impl fmt::Debug for dyn DynRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.debug(f)
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
    settled: Mutex<SettledTasks>,
    max_tasks: usize,
}

/// The families of the tasks done in the last [`SETTLED_FAMILY_TTL`], at most a
/// registry's `max_tasks` of them, the oldest forgotten first.
#[derive(Debug, Default)]
struct SettledTasks {
    families: HashMap<String, (Family, u64)>,
    /// Task ids in the order they were settled, with the time, to forget the oldest.
    order: VecDeque<(String, u64)>,
}

impl SettledTasks {
    fn insert(&mut self, task_id: &str, family: Family, now_ms: u64, max: usize) {
        self.forget_before(now_ms.saturating_sub(millis(SETTLED_FAMILY_TTL)));
        // A task settled again leaves a stale entry in `order`: bound those too.
        let max = max.max(1);
        while self.families.len() >= max || self.order.len() >= 2 * max {
            let Some((oldest, at)) = self.order.pop_front() else {
                break;
            };
            self.remove_if_settled_at(&oldest, at);
        }
        self.families.insert(task_id.to_owned(), (family, now_ms));
        self.order.push_back((task_id.to_owned(), now_ms));
    }

    fn family_of(&self, task_id: &str, now_ms: u64) -> Option<Family> {
        let (family, at) = self.families.get(task_id)?;
        (now_ms.saturating_sub(*at) < millis(SETTLED_FAMILY_TTL)).then_some(*family)
    }

    fn forget_before(&mut self, cutoff_ms: u64) {
        while let Some((_, at)) = self.order.front() {
            if *at >= cutoff_ms {
                break;
            }
            if let Some((task_id, at)) = self.order.pop_front() {
                self.remove_if_settled_at(&task_id, at);
            }
        }
    }

    /// Forgets `task_id` if its entry is the one settled at `at` (not a later one).
    fn remove_if_settled_at(&mut self, task_id: &str, at: u64) {
        if self
            .families
            .get(task_id)
            .is_some_and(|(_, when)| *when == at)
        {
            self.families.remove(task_id);
        }
    }
}

/// The default most tasks a [`MemoryRegistry`] holds.
pub const DEFAULT_MAX_EXPECTED_TASKS: usize = 100_000;

/// How long a registry keeps the family of a task it was told is
/// [`done`](TaskRegistry::done): seven days, longer than the sender retries a callback
/// and than most outages, so a late callback of the task that names no family is keyed
/// as the poll that settled it was.
pub const SETTLED_FAMILY_TTL: Duration = Duration::from_secs(7 * 24 * 60 * 60);

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
            settled: Mutex::new(SettledTasks::default()),
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

    /// Removes a registered task and keeps `keyed_as`, else its registered family.
    fn settle(
        &self,
        task_id: &str,
        keyed_as: Option<Family>,
    ) -> std::future::Ready<Result<(), RegistryError>> {
        let removed = self.lock().remove(task_id);
        if let Some((task, _)) = removed {
            let family = keyed_as.unwrap_or(task.family);
            self.settled()
                .insert(task_id, family, unix_millis(), self.max_tasks);
        }
        std::future::ready(Ok(()))
    }

    fn settled(&self) -> std::sync::MutexGuard<'_, SettledTasks> {
        self.settled
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
    }
}

impl TaskRegistry for MemoryRegistry {
    fn expect(
        &self,
        task: ExpectedTask,
        due_ms: u64,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        let result = {
            let mut tasks = self.lock();
            if tasks.len() >= self.max_tasks && !tasks.contains_key(task.task_id()) {
                Err(RegistryError::new("memory registry is full"))
            } else {
                tasks.insert(task.task_id.clone(), (task, due_ms));
                Ok(())
            }
        };
        std::future::ready(result)
    }

    fn take_due(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> impl Future<Output = Result<Vec<ExpectedTask>, RegistryError>> + Send {
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
        std::future::ready(Ok(taken))
    }

    fn reschedule(
        &self,
        task_id: &str,
        due_ms: u64,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        if let Some(entry) = self.lock().get_mut(task_id) {
            entry.1 = due_ms;
        }
        std::future::ready(Ok(()))
    }

    fn done(&self, task_id: &str) -> impl Future<Output = Result<(), RegistryError>> + Send {
        self.settle(task_id, None)
    }

    fn done_as(
        &self,
        task_id: &str,
        keyed_as: Family,
    ) -> impl Future<Output = Result<(), RegistryError>> + Send {
        self.settle(task_id, Some(keyed_as))
    }

    fn family_of(
        &self,
        task_id: &str,
    ) -> impl Future<Output = Result<Option<Family>, RegistryError>> + Send {
        let registered = self.lock().get(task_id).map(|(task, _)| task.family);
        let family = registered.or_else(|| self.settled().family_of(task_id, unix_millis()));
        std::future::ready(Ok(family))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn settled_tasks_stay_bounded_and_expire() {
        let mut settled = SettledTasks::default();
        // One task settled again and again leaves stale entries in the order: bounded.
        for round in 0..10 {
            settled.insert("same", Family::Wav, 1_000 + round, 4);
        }
        assert!(settled.order.len() <= 8, "{}", settled.order.len());
        assert_eq!(settled.family_of("same", 1_010), Some(Family::Wav));
        for i in 0..10 {
            settled.insert(&format!("t{i}"), Family::Midi, 2_000 + i, 4);
        }
        assert_eq!(settled.families.len(), 4);
        assert!(settled.order.len() <= 8, "{}", settled.order.len());
        assert_eq!(settled.family_of("t9", 3_000), Some(Family::Midi));
        assert_eq!(settled.family_of("t0", 3_000), None, "the oldest forgotten");
        let expired = 2_009 + millis(SETTLED_FAMILY_TTL);
        assert_eq!(settled.family_of("t9", expired), None, "expired");
    }

    #[tokio::test]
    async fn done_as_keeps_the_family_the_outcome_was_keyed_as() {
        let registry = MemoryRegistry::new();
        for (task, keyed_as) in [("a", None), ("b", Some(Family::Unknown))] {
            registry
                .expect(ExpectedTask::new(task, Family::Wav, 0), 0)
                .await
                .expect("expect");
            match keyed_as {
                Some(family) => registry.done_as(task, family).await,
                None => registry.done(task).await,
            }
            .expect("done");
        }
        assert_eq!(registry.family_of("a").await.unwrap(), Some(Family::Wav));
        assert_eq!(
            registry.family_of("b").await.unwrap(),
            Some(Family::Unknown)
        );
    }

    #[test]
    fn a_poll_answer_is_cut_and_shows_control_characters_as_spaces() {
        assert_eq!(cut_poll_answer("pending"), "pending");
        assert_eq!(cut_poll_answer("a\u{0}b\nc"), "a b c");
        let long = "é".repeat(MAX_POLL_ANSWER_CHARS + 5);
        assert_eq!(
            cut_poll_answer(&long).chars().count(),
            MAX_POLL_ANSWER_CHARS
        );
    }
}
