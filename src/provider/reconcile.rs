//! The reconciler: polls the task-details endpoint about expected tasks whose final
//! callback has not come, and feeds what it learns through the receiver's dedup and
//! handlers (stages 4 to 6), so a callback and a poll of one outcome run the handler
//! once, whichever comes first.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tracing::Instrument;

use super::client::ProviderClient;
use super::map::SyntheticCallback;
use super::registry::{
    DynRegistry, ExpectedTask, RegistryError, cut_poll_answer, millis, unix_millis,
};
use super::submit::{JobsTask, SubmitError};
use crate::answer::Answer;
use crate::event::{ApiRoute, Family};
use crate::metrics::{self, Labels};
use crate::pipeline::admit::AdmitVerified;
use crate::receiver::SunoCallbacks;
use crate::source::EventSource;
use crate::untrusted::Untrusted;

/// When polling starts by default, after registration: past the sender's last retry
/// (1, 5 and 15 minutes after its first attempt), with some generation time.
pub const DEFAULT_RECONCILE_AFTER: Duration = Duration::from_secs(25 * 60);
/// How often a task is polled by default (the provider's advice: every 30 s).
pub const DEFAULT_RECONCILE_INTERVAL: Duration = Duration::from_secs(30);
/// The longest pause between two polls of one task by default.
pub const DEFAULT_MAX_RECONCILE_INTERVAL: Duration = Duration::from_secs(10 * 60);
/// How long a task is waited for by default: the provider keeps files 14 days.
pub const DEFAULT_MAX_AGE: Duration = Duration::from_secs(14 * 24 * 60 * 60);

type OverdueHandler = Arc<dyn Fn(&ExpectedTask) + Send + Sync>;

/// Polls expected tasks and delivers what it learns to the receiver's handlers.
///
/// Build it from the receiver, register each task you submit with
/// [`expect`](Self::expect), and spawn [`run`](Self::run).
///
/// ```no_run
/// use std::time::Duration;
/// use suno_callback::SunoCallbacks;
/// use suno_callback::Family;
/// use suno_callback::provider::{ProviderClient, Reconciler};
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let callbacks = SunoCallbacks::builder()
///     .hmac_key("webhook-hmac-key")
///     .on_complete(|event| async move { println!("{} done", event.task_id()); Ok(()) })
///     .build()?;
/// let client = ProviderClient::builder(std::env::var("SUNO_API_KEY")?).build()?;
/// let reconciler = Reconciler::builder(&callbacks, client)
///     .on_overdue(|task| eprintln!("task {} never finished", task.task_id()))
///     .build();
/// tokio::spawn(reconciler.clone().run());
/// // After each submission:
/// reconciler.expect("2fac7b1e", Family::Music).await?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct Reconciler {
    inner: Arc<Inner>,
}

struct Inner {
    admission: Arc<dyn AdmitVerified>,
    registry: Arc<dyn DynRegistry>,
    client: ProviderClient,
    after: Duration,
    interval: Duration,
    max_interval: Duration,
    max_age: Duration,
    lease: Duration,
    batch: usize,
    on_overdue: Option<OverdueHandler>,
    callback_url: Option<String>,
}

impl fmt::Debug for Reconciler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = &*self.inner;
        f.debug_struct("Reconciler")
            .field("client", &inner.client)
            .field("registry", &inner.registry)
            .field("after", &inner.after)
            .field("interval", &inner.interval)
            .field("max_interval", &inner.max_interval)
            .field("max_age", &inner.max_age)
            .field("batch", &inner.batch)
            .field("on_overdue", &inner.on_overdue.is_some())
            .field("callback_url", &inner.callback_url)
            .finish()
    }
}

/// What one pass of [`Reconciler::poll_due`] did.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct PollReport {
    /// Tasks asked about.
    pub polled: usize,
    /// Events handed to the handlers (processed, duplicate or ignored).
    pub delivered: usize,
    /// Tasks still pending, or whose answer could not be had or mapped this time.
    pub retry_later: usize,
    /// Tasks given up after the maximum age, and reported.
    pub overdue: usize,
}

impl Reconciler {
    /// A builder for a reconciler feeding `callbacks`' dedup store and handlers, and
    /// sharing its task registry.
    pub fn builder(callbacks: &SunoCallbacks, client: ProviderClient) -> ReconcilerBuilder {
        ReconcilerBuilder {
            admission: callbacks.admission(),
            registry: callbacks.task_registry_handle(),
            client,
            after: DEFAULT_RECONCILE_AFTER,
            interval: DEFAULT_RECONCILE_INTERVAL,
            max_interval: DEFAULT_MAX_RECONCILE_INTERVAL,
            max_age: DEFAULT_MAX_AGE,
            batch: 50,
            on_overdue: None,
            callback_url: None,
        }
    }

    fn registry(&self) -> &dyn DynRegistry {
        &*self.inner.registry
    }

    /// Registers a task submitted on the classic route: polled at its family's
    /// endpoint from the configured delay on, until its final callback or poll. A task
    /// of [`Family::Unknown`] cannot be polled there: it is given up (and reported as
    /// overdue) at its first poll.
    ///
    /// # Errors
    ///
    /// The registry is unavailable.
    pub async fn expect(
        &self,
        task_id: impl Into<String>,
        family: Family,
    ) -> Result<(), RegistryError> {
        self.register(ExpectedTask::new(task_id, family, unix_millis()))
            .await
    }

    /// Registers a task created on the jobs route (`POST /api/v1/jobs/createTask`):
    /// polled at `/api/v1/jobs/recordInfo`, whatever `family` (the model's,
    /// [`Family::from_model`]; [`Family::Unknown`] when not known: the answer's
    /// model tells it). [`submit`](Self::submit) creates and registers in one call.
    ///
    /// # Errors
    ///
    /// The registry is unavailable.
    pub async fn expect_jobs(
        &self,
        task_id: impl Into<String>,
        family: Family,
    ) -> Result<(), RegistryError> {
        let task = ExpectedTask::new(task_id, family, unix_millis()).with_route(ApiRoute::Jobs);
        self.register(task).await
    }

    async fn register(&self, task: ExpectedTask) -> Result<(), RegistryError> {
        let due = task
            .registered_at_ms()
            .saturating_add(millis(self.inner.after));
        self.registry().expect_boxed(task, due).await
    }

    /// Creates a task on the jobs route and registers it for recovery before it
    /// returns its id, so a task whose callbacks never come is still polled, with no
    /// code of yours. The callback URL is the task's, else the reconciler's
    /// ([`ReconcilerBuilder::callback_url`]); the family is the model's.
    ///
    /// ```no_run
    /// use suno_callback::SunoCallbacks;
    /// use suno_callback::provider::{JobsTask, ProviderClient, Reconciler};
    ///
    /// # async fn run(callbacks: SunoCallbacks) -> Result<(), Box<dyn std::error::Error>> {
    /// let client = ProviderClient::builder(std::env::var("SUNO_API_KEY")?).build()?;
    /// let reconciler = Reconciler::builder(&callbacks, client)
    ///     .callback_url("https://api.example.com/callbacks/suno")
    ///     .build();
    /// let input = serde_json::json!({"prompt": "a calm piano piece", "model": "V6"});
    /// let task_id = reconciler.submit(JobsTask::new("ai-music-api/generate", input)).await?;
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    ///
    /// No callback URL ([`SubmitError::is_config`]; nothing sent), the provider did not
    /// create the task ([`SubmitError::is_provider`]), or the task was created but the
    /// registry failed ([`SubmitError::is_registry`], with its
    /// [`task_id`](SubmitError::task_id)).
    pub async fn submit(&self, task: JobsTask) -> Result<String, SubmitError> {
        let task = match (task.callback_url_ref(), &self.inner.callback_url) {
            (Some(_), _) => task,
            (None, Some(url)) => task.callback_url(url.clone()),
            (None, None) => {
                return Err(SubmitError::config(
                    "no callback URL: set JobsTask::callback_url or ReconcilerBuilder::callback_url",
                ));
            }
        };
        let task_id = self
            .inner
            .client
            .create_jobs_task(&task)
            .await
            .map_err(SubmitError::provider)?;
        match self.expect_jobs(task_id.clone(), task.family()).await {
            Ok(()) => Ok(task_id),
            Err(error) => Err(SubmitError::registry(task_id, error)),
        }
    }

    /// Polls every task now due, once.
    ///
    /// # Errors
    ///
    /// The registry is unavailable.
    pub async fn poll_due(&self) -> Result<PollReport, RegistryError> {
        let inner = &*self.inner;
        let now = unix_millis();
        let tasks = self
            .registry()
            .take_due_boxed(now, inner.batch, millis(inner.lease))
            .await?;
        let mut report = PollReport::default();
        for task in tasks {
            self.poll_one(&task, &mut report).await?;
        }
        Ok(report)
    }

    /// Polls due tasks every interval, forever. Spawn it; registry failures are logged
    /// and the next pass tries again.
    pub async fn run(self) {
        loop {
            let full = match self.poll_due().await {
                Ok(report) => {
                    if report.polled + report.overdue > 0 {
                        tracing::debug!(?report, "reconciler pass");
                    }
                    report.polled + report.overdue >= self.inner.batch
                }
                Err(error) => {
                    tracing::warn!(%error, "reconciler pass failed");
                    false
                }
            };
            // A full batch may have left due tasks behind: take them at once.
            if !full {
                tokio::time::sleep(self.inner.interval.min(Duration::from_secs(5))).await;
            }
        }
    }

    /// The pause before the next poll of `task`: a twentieth of its age, at least the
    /// interval and at most the maximum interval, so a task that stays pending for
    /// days costs a few requests an hour, not 120.
    fn pause(&self, task: &ExpectedTask, now: u64) -> Duration {
        let inner = &*self.inner;
        let age = Duration::from_millis(now.saturating_sub(task.registered_at_ms()));
        (age / 20).clamp(inner.interval, inner.max_interval.max(inner.interval))
    }

    async fn poll_one(
        &self,
        task: &ExpectedTask,
        report: &mut PollReport,
    ) -> Result<(), RegistryError> {
        let inner = &*self.inner;
        let now = unix_millis();
        let next = now.saturating_add(millis(self.pause(task, now)));
        if now.saturating_sub(task.registered_at_ms()) > millis(inner.max_age) {
            report.overdue += 1;
            tracing::warn!(
                task_id = ?task.task_id(),
                family = %task.family(),
                "expected task not final after the maximum age; no longer polled"
            );
            metrics::poll(task.family(), "overdue");
            if let Some(handler) = &inner.on_overdue {
                handler(task);
            }
            return self.registry().done_boxed(task.task_id()).await;
        }
        report.polled += 1;
        let answer = match inner
            .client
            .details(task.route(), task.family(), task.task_id())
            .await
        {
            Ok(answer) => answer,
            Err(error) if error.is_unknown_family() => {
                // No endpoint will ever answer: give it up now rather than at its age.
                report.overdue += 1;
                tracing::warn!(
                    task_id = ?task.task_id(),
                    "expected classic task of an unknown family cannot be polled; no longer polled"
                );
                metrics::poll(task.family(), "overdue");
                if let Some(handler) = &inner.on_overdue {
                    handler(task);
                }
                return self.registry().done_boxed(task.task_id()).await;
            }
            Err(error) => {
                tracing::warn!(task_id = ?task.task_id(), %error, "poll failed; will retry");
                metrics::poll(task.family(), "request_failed");
                report.retry_later += 1;
                let answer = format!("request failed: {error}");
                return self.polled(task, next, &answer).await;
            }
        };
        let synthetic = match SyntheticCallback::from_answer(&answer) {
            Ok(Some(synthetic)) if synthetic.task_id() == task.task_id() => synthetic,
            Ok(None) => {
                metrics::poll(task.family(), "pending");
                report.retry_later += 1;
                return self
                    .polled(task, next, "pending: nothing to deliver yet")
                    .await;
            }
            Ok(Some(_)) => {
                tracing::warn!(task_id = ?task.task_id(), "provider answered about another task");
                metrics::poll(task.family(), "unmapped");
                report.retry_later += 1;
                return self
                    .polled(task, next, "unmapped: the answer is about another task")
                    .await;
            }
            Err(error) => {
                tracing::warn!(task_id = ?task.task_id(), %error, "poll answer cannot be mapped; will retry");
                metrics::poll(task.family(), "unmapped");
                report.retry_later += 1;
                let answer = format!("unmapped: {error}");
                return self.polled(task, next, &answer).await;
            }
        };
        let event = match synthetic.to_event() {
            Ok(event) => event,
            Err(error) => {
                tracing::warn!(task_id = ?task.task_id(), %error, "synthetic callback does not parse");
                metrics::poll(task.family(), "unmapped");
                report.retry_later += 1;
                let answer = format!("unmapped: {error}");
                return self.polled(task, next, &answer).await;
            }
        };
        let labels = Labels::of(event.family(), event.stage().as_str());
        // The event's family: on the jobs route, the answer's model tells it.
        let family = event.family();
        let span = tracing::info_span!(
            "suno_callback",
            task_id = ?Untrusted(task.task_id()),
            family = event.family().as_str(),
            stage = ?Untrusted(event.stage().as_str()),
            result = event.outcome().as_str(),
            source = "poll",
        );
        let answer = Arc::clone(&inner.admission)
            .admit_verified(event, EventSource::Poll)
            .instrument(span)
            .await;
        let delivered = match answer {
            Answer::Processed(_) => {
                metrics::poll(family, "delivered");
                metrics::recovered(labels);
                true
            }
            Answer::Duplicate(_) => {
                metrics::poll(family, "duplicate");
                true
            }
            Answer::Ignored(_) => {
                metrics::poll(family, "ignored");
                true
            }
            _ => {
                metrics::poll(family, "not_delivered");
                false
            }
        };
        tracing::info!(
            task_id = ?task.task_id(),
            stage = synthetic.stage(),
            outcome = answer.label(),
            "polled event delivered"
        );
        if delivered {
            report.delivered += 1;
        } else {
            report.retry_later += 1;
        }
        if delivered && synthetic.is_final() {
            // The pipeline marked it done already; this covers a registry that was
            // briefly unavailable then.
            self.registry().done_boxed(task.task_id()).await
        } else {
            let answer = if delivered {
                format!("{} delivered: {}", synthetic.stage(), answer.label())
            } else {
                format!("{} not delivered: {}", synthetic.stage(), answer.label())
            };
            self.polled(task, next, &answer).await
        }
    }

    /// Reschedules a task its poll did not settle to `next`, keeping what the poll got
    /// (cut to [`MAX_POLL_ANSWER_CHARS`] characters) where the registry keeps it.
    async fn polled(
        &self,
        task: &ExpectedTask,
        next: u64,
        answer: &str,
    ) -> Result<(), RegistryError> {
        self.registry()
            .reschedule_after_poll_boxed(task.task_id(), next, &cut_poll_answer(answer))
            .await
    }
}

/// Configures a [`Reconciler`].
pub struct ReconcilerBuilder {
    admission: Arc<dyn AdmitVerified>,
    registry: Arc<dyn DynRegistry>,
    client: ProviderClient,
    after: Duration,
    interval: Duration,
    max_interval: Duration,
    max_age: Duration,
    batch: usize,
    on_overdue: Option<OverdueHandler>,
    callback_url: Option<String>,
}

impl fmt::Debug for ReconcilerBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ReconcilerBuilder")
            .field("client", &self.client)
            .field("after", &self.after)
            .field("interval", &self.interval)
            .field("max_interval", &self.max_interval)
            .field("max_age", &self.max_age)
            .field("batch", &self.batch)
            .field("callback_url", &self.callback_url)
            .finish_non_exhaustive()
    }
}

impl ReconcilerBuilder {
    /// How long after registration polling starts (default
    /// [`DEFAULT_RECONCILE_AFTER`], 25 minutes).
    #[must_use]
    pub fn after(mut self, delay: Duration) -> Self {
        self.after = delay;
        self
    }
    /// The shortest pause between two polls of one task (default
    /// [`DEFAULT_RECONCILE_INTERVAL`], 30 s, the provider's advice). The pause grows
    /// with the task's age (a twentieth of it) up to [`max_interval`](Self::max_interval).
    #[must_use]
    pub fn interval(mut self, interval: Duration) -> Self {
        self.interval = interval;
        self
    }
    /// The longest pause between two polls of one task (default
    /// [`DEFAULT_MAX_RECONCILE_INTERVAL`], 10 minutes). Set it to the interval to poll
    /// at a fixed pace.
    #[must_use]
    pub fn max_interval(mut self, max_interval: Duration) -> Self {
        self.max_interval = max_interval;
        self
    }
    /// How long after registration a task that is not final is given up and reported
    /// (default [`DEFAULT_MAX_AGE`], 14 days).
    #[must_use]
    pub fn max_age(mut self, max_age: Duration) -> Self {
        self.max_age = max_age;
        self
    }
    /// How many tasks one pass takes at most (default 50).
    #[must_use]
    pub fn batch(mut self, batch: usize) -> Self {
        self.batch = batch.max(1);
        self
    }
    /// Called (besides a `warn` log line) for each task given up after the maximum age.
    #[must_use]
    pub fn on_overdue(mut self, handler: impl Fn(&ExpectedTask) + Send + Sync + 'static) -> Self {
        self.on_overdue = Some(Arc::new(handler));
        self
    }
    /// The receiver's public URL, the `callBackUrl` of the tasks
    /// [`Reconciler::submit`] creates without one of their own.
    #[must_use]
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }
    /// Builds the reconciler.
    pub fn build(self) -> Reconciler {
        // A task taken by a pass stays leased long enough for the client's retries.
        let lease = self.interval.max(Duration::from_secs(120));
        Reconciler {
            inner: Arc::new(Inner {
                admission: self.admission,
                registry: self.registry,
                client: self.client,
                after: self.after,
                interval: self.interval,
                max_interval: self.max_interval,
                max_age: self.max_age,
                lease,
                batch: self.batch,
                on_overdue: self.on_overdue,
                callback_url: self.callback_url,
            }),
        }
    }
}
