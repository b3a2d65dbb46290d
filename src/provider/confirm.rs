//! Confirm mode, a stage between verify and claim: a verified callback is dispatched
//! only as the provider's task-details endpoint tells it (its outcome, its URLs),
//! never as the unsigned body alone says. While the provider does not know the
//! outcome, the callback is answered `503` with `Retry-After`: the sender retries, and
//! the reconciler catches it too.

use std::collections::{BTreeSet, HashMap};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};

use futures_util::FutureExt;
use futures_util::future::{Shared, WeakShared};

use super::answer::TaskAnswer;
use super::client::ProviderClient;
use super::error::ProviderError;
use super::map::SyntheticCallback;
use super::registry::DynRegistry;
use crate::event::{ApiRoute, CallbackEvent, Family, Outcome};

/// Which families confirm mode applies to.
///
/// ```
/// use suno_callback::Family;
/// use suno_callback::provider::ConfirmMode;
///
/// assert!(ConfirmMode::all().applies_to(Family::Wav));
/// let music_only = ConfirmMode::families([Family::Music]);
/// assert!(music_only.applies_to(Family::Music));
/// assert!(!music_only.applies_to(Family::Wav));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ConfirmMode {
    families: Option<BTreeSet<Family>>,
}

impl ConfirmMode {
    /// Every family.
    pub fn all() -> Self {
        Self { families: None }
    }

    /// Only these families.
    pub fn families(families: impl IntoIterator<Item = Family>) -> Self {
        Self {
            families: Some(families.into_iter().collect()),
        }
    }

    /// Whether every family is confirmed.
    pub(crate) fn applies_to_all(&self) -> bool {
        self.families.is_none()
    }

    /// Whether callbacks of `family` are confirmed.
    pub fn applies_to(&self, family: Family) -> bool {
        self.families
            .as_ref()
            .is_none_or(|families| families.contains(&family))
    }
}

/// The configured stage.
pub(crate) struct ConfirmStage {
    pub(crate) client: ProviderClient,
    pub(crate) mode: ConfirmMode,
    /// The task-details requests under way, one per task: every confirmation of a task
    /// while one is under way (replays of one request above all) waits for that one
    /// instead of queueing a request of its own for the task's rate.
    asking: Arc<Mutex<AskingMap>>,
}

/// The requests under way, by task.
type AskingMap = HashMap<(ApiRoute, Family, String), WeakShared<Asking>>;

/// A task-details request under way, shared by the confirmations waiting for it. It is
/// dropped (and its rate slot given back) once no confirmation waits for it.
type Asking = Pin<Box<dyn Future<Output = Arc<Result<TaskAnswer, ProviderError>>> + Send>>;

/// Above this many entries, the requests no one waits for any more are forgotten.
const PRUNE_ASKING_ABOVE: usize = 1024;

impl fmt::Debug for ConfirmStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfirmStage")
            .field("client", &self.client)
            .field("mode", &self.mode)
            .finish_non_exhaustive()
    }
}

/// What the stage decided.
#[derive(Debug)]
pub(crate) enum Confirmation {
    /// The family is not confirmed: dispatch the callback as it came.
    NotApplicable,
    /// Dispatch this event, built from the provider's answer.
    Confirmed(Box<CallbackEvent>),
    /// The provider does not confirm an outcome yet (or could not be asked).
    NotYet,
}

impl ConfirmStage {
    pub(crate) fn new(client: ProviderClient, mode: ConfirmMode) -> Self {
        Self {
            client,
            mode,
            asking: Arc::default(),
        }
    }

    /// The task's details: the request under way for the task if there is one, else a
    /// new one, shared with the confirmations that come while it is under way.
    async fn task_details(
        &self,
        route: ApiRoute,
        family: Family,
        task_id: &str,
    ) -> Arc<Result<TaskAnswer, ProviderError>> {
        let key = (route, family, task_id.to_owned());
        let shared = {
            let mut asking = self.asking.lock().unwrap_or_else(PoisonError::into_inner);
            match asking.get(&key).and_then(WeakShared::upgrade) {
                Some(shared) => shared,
                None => {
                    if asking.len() > PRUNE_ASKING_ABOVE {
                        asking.retain(|_, weak| weak.upgrade().is_some());
                    }
                    let (client, task, map) = (
                        self.client.clone(),
                        key.2.clone(),
                        Arc::downgrade(&self.asking),
                    );
                    let ask: Asking = Box::pin(async move {
                        let answer = client.details(route, family, &task).await;
                        // Answered: later confirmations ask again (the task may move on).
                        if let Some(map) = map.upgrade() {
                            let mut asking = map.lock().unwrap_or_else(PoisonError::into_inner);
                            asking.remove(&(route, family, task));
                        }
                        Arc::new(answer)
                    });
                    let shared: Shared<Asking> = ask.shared();
                    if let Some(weak) = shared.downgrade() {
                        asking.insert(key, weak);
                    }
                    shared
                }
            }
        };
        shared.await
    }

    pub(crate) async fn run(
        &self,
        event: &CallbackEvent,
        registry: &dyn DynRegistry,
        reused: bool,
    ) -> Confirmation {
        // A callback in the jobs shape is asked about at the jobs route's endpoint,
        // which needs no family: the model's decides whether the mode applies.
        let route = event.api_route();
        // Else the registered family first; else the event's (its path's, or its
        // shape's).
        let family = match (route, registry.family_of_boxed(event.task_id()).await) {
            (ApiRoute::Jobs, _) => Some(event.family()),
            (_, Ok(Some(family))) if family != Family::Unknown => Some(family),
            _ => Some(event.family()).filter(|family| *family != Family::Unknown),
        };
        let Some(family) = family else {
            if reused || self.mode.applies_to_all() {
                tracing::warn!(
                    "confirm mode: the callback's family is unknown, it cannot be confirmed"
                );
                return Confirmation::NotYet;
            }
            return Confirmation::NotApplicable;
        };
        // A callback reusing another's signature is confirmed whatever the mode.
        if !reused && !self.mode.applies_to(family) {
            return Confirmation::NotApplicable;
        }
        let asked = self.task_details(route, family, event.task_id()).await;
        let answer = match &*asked {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, %family, "confirm mode: task-details request failed");
                return Confirmation::NotYet;
            }
        };
        let synthetic = match SyntheticCallback::from_answer(answer) {
            Ok(Some(synthetic)) if synthetic.task_id() == event.task_id() => synthetic,
            Ok(Some(_)) => {
                tracing::warn!(%family, "confirm mode: the provider answered about another task");
                return Confirmation::NotYet;
            }
            Ok(None) => return Confirmation::NotYet,
            Err(error) => {
                tracing::warn!(%error, %family, "confirm mode: answer cannot be mapped");
                return Confirmation::NotYet;
            }
        };
        let confirmed = match synthetic.to_event() {
            Ok(confirmed) => confirmed,
            Err(error) => {
                tracing::warn!(%error, %family, "confirm mode: synthetic callback does not parse");
                return Confirmation::NotYet;
            }
        };
        // The provider is ahead of the callback (it says `complete` when the `text` or
        // `first` arrives): its later state proves the task passed the callback's stage,
        // so that stage is confirmed, as that stage, with what the provider says.
        if let (Some(at), Some(reached)) = (step_rank(event), step_rank(&confirmed))
            && at < reached
        {
            return match restaged(&confirmed, event.stage().as_str()) {
                Some(stage) => Confirmation::Confirmed(Box::new(stage)),
                None => Confirmation::NotYet,
            };
        }
        // The provider is behind the callback (it says `first`, the callback
        // `complete`): wait for it rather than dispatch a stage the callback did not
        // announce and answer the callback 200.
        if !synthetic.is_final() && confirmed.stage() != event.stage() {
            return Confirmation::NotYet;
        }
        Confirmation::Confirmed(Box::new(confirmed))
    }
}

/// Where a success of a task with steps stands among its steps: music `text`, `first`,
/// `complete`; voice `wait_validating`, `success`. `None` for a failure, and for the
/// families without steps.
fn step_rank(event: &CallbackEvent) -> Option<u8> {
    if event.outcome() != Outcome::Success {
        return None;
    }
    let steps: &[&str] = match event.family() {
        Family::Music => &["text", "first", "complete"],
        Family::Voice => &["wait_validating", "success"],
        _ => return None,
    };
    let stage = event.stage().as_str();
    steps
        .iter()
        .position(|step| *step == stage)
        .and_then(|rank| u8::try_from(rank).ok())
}

/// The provider's event `confirmed`, as the event of the earlier step `stage` of its
/// task: the provider's body with its stage word (music `callbackType`, voice `status`)
/// set to `stage`.
fn restaged(confirmed: &CallbackEvent, stage: &str) -> Option<CallbackEvent> {
    let field = match confirmed.family() {
        Family::Music => "callbackType",
        Family::Voice => "status",
        _ => return None,
    };
    let mut body = confirmed.raw_json();
    let data = body.get_mut("data")?.as_object_mut()?;
    data.insert(field.to_owned(), serde_json::Value::from(stage));
    let bytes = serde_json::to_vec(&body).ok()?;
    CallbackEvent::from_json_as(confirmed.family(), bytes).ok()
}
