//! Submitting a task on the jobs route: what to create ([`JobsTask`]), and why
//! creating and registering it failed ([`SubmitError`]).

use std::fmt;

use serde_json::Value;

use super::error::ProviderError;
use super::registry::RegistryError;
use crate::event::Family;

/// A task to create on the jobs route: a model name, its `input` as the provider's
/// page for the model documents it (snake_case), and the URL its callback goes to.
///
/// ```
/// use suno_callback::Family;
/// use suno_callback::provider::JobsTask;
///
/// let task = JobsTask::new(
///     "ai-music-api/generate",
///     serde_json::json!({"prompt": "a calm piano piece", "custom_mode": false, "model": "V6"}),
/// )
/// .callback_url("https://api.example.com/callbacks/suno");
/// assert_eq!(task.family(), Family::Music);
/// assert_eq!(task.input()["model"], "V6");
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct JobsTask {
    model: String,
    input: Value,
    callback_url: Option<String>,
}

impl JobsTask {
    /// A task of `model` (`ai-music-api/<name>`, or any other model the route serves)
    /// with this `input`.
    pub fn new(model: impl Into<String>, input: Value) -> Self {
        Self {
            model: model.into(),
            input,
            callback_url: None,
        }
    }

    /// The `callBackUrl`: the receiver's public URL. Without one,
    /// [`Reconciler::submit`](super::Reconciler::submit) uses the reconciler's
    /// ([`ReconcilerBuilder::callback_url`](super::ReconcilerBuilder::callback_url)).
    #[must_use]
    pub fn callback_url(mut self, url: impl Into<String>) -> Self {
        self.callback_url = Some(url.into());
        self
    }

    /// The model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The model's family ([`Family::from_model`]): [`Family::Unknown`] for a
    /// model outside the table.
    pub fn family(&self) -> Family {
        Family::from_model(&self.model).unwrap_or(Family::Unknown)
    }

    /// The `input` object.
    pub fn input(&self) -> &Value {
        &self.input
    }

    /// The callback URL, if set.
    pub(crate) fn callback_url_ref(&self) -> Option<&str> {
        self.callback_url.as_deref()
    }
}

/// Why [`Reconciler::submit`](super::Reconciler::submit) did not create and register
/// a task.
///
/// When the task was created but could not be registered,
/// [`task_id`](Self::task_id) gives its id: the task runs, and registering it again
/// ([`Reconciler::expect_jobs`](super::Reconciler::expect_jobs)) is what is left to do.
///
/// ```
/// use suno_callback::provider::{JobsTask, ProviderClient, Reconciler};
/// use suno_callback::SunoCallbacks;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let callbacks = SunoCallbacks::builder().hmac_key("webhook-hmac-key").build()?;
/// let reconciler = Reconciler::builder(&callbacks, ProviderClient::builder("api-key").build()?).build();
/// // No callback URL, neither on the task nor on the reconciler: nothing is sent.
/// let error = reconciler
///     .submit(JobsTask::new("ai-music-api/generate", serde_json::json!({"prompt": "rain"})))
///     .await
///     .unwrap_err();
/// assert!(error.is_config());
/// assert_eq!(error.task_id(), None);
/// # Ok(()) }
/// # tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap().block_on(run()).unwrap();
/// ```
#[derive(Debug)]
pub struct SubmitError {
    kind: SubmitErrorKind,
}

#[derive(Debug)]
enum SubmitErrorKind {
    Config(&'static str),
    Provider(ProviderError),
    Registry {
        task_id: String,
        error: RegistryError,
    },
}

impl SubmitError {
    pub(crate) fn config(reason: &'static str) -> Self {
        Self {
            kind: SubmitErrorKind::Config(reason),
        }
    }
    pub(crate) fn provider(error: ProviderError) -> Self {
        Self {
            kind: SubmitErrorKind::Provider(error),
        }
    }
    pub(crate) fn registry(task_id: String, error: RegistryError) -> Self {
        Self {
            kind: SubmitErrorKind::Registry { task_id, error },
        }
    }

    /// Nothing was sent: the task or the reconciler lacks a setting (the callback
    /// URL).
    pub fn is_config(&self) -> bool {
        matches!(self.kind, SubmitErrorKind::Config(_))
    }
    /// The provider did not create the task (or its answer cannot be read): see
    /// [`provider_error`](Self::provider_error).
    pub fn is_provider(&self) -> bool {
        matches!(self.kind, SubmitErrorKind::Provider(_))
    }
    /// The creation request's error, when [`is_provider`](Self::is_provider).
    pub fn provider_error(&self) -> Option<&ProviderError> {
        match &self.kind {
            SubmitErrorKind::Provider(error) => Some(error),
            _ => None,
        }
    }
    /// The task was created, but registering it failed: it runs, and is not yet
    /// expected by the reconciler.
    pub fn is_registry(&self) -> bool {
        matches!(self.kind, SubmitErrorKind::Registry { .. })
    }
    /// The created task's id, when [`is_registry`](Self::is_registry).
    pub fn task_id(&self) -> Option<&str> {
        match &self.kind {
            SubmitErrorKind::Registry { task_id, .. } => Some(task_id),
            _ => None,
        }
    }
}

impl fmt::Display for SubmitError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            SubmitErrorKind::Config(reason) => write!(f, "task not submitted: {reason}"),
            SubmitErrorKind::Provider(_) => f.write_str("task not created by the provider"),
            SubmitErrorKind::Registry { task_id, .. } => write!(
                f,
                "task {} created but not registered for recovery",
                super::error::cut(task_id)
            ),
        }
    }
}

impl std::error::Error for SubmitError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            SubmitErrorKind::Config(_) => None,
            SubmitErrorKind::Provider(error) => Some(error),
            SubmitErrorKind::Registry { error, .. } => Some(error),
        }
    }
}
