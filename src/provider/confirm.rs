//! Confirm mode, a stage between verify and claim: a verified callback is dispatched
//! only as the provider's task-details endpoint tells it (its outcome, its URLs),
//! never as the unsigned body alone says. While the provider does not know the
//! outcome, the callback is answered `503` with `Retry-After`: the sender retries, and
//! the reconciler catches it too.

use std::collections::BTreeSet;
use std::fmt;

use super::client::ProviderClient;
use super::map::SyntheticCallback;
use super::registry::DynRegistry;
use crate::event::{ApiRoute, CallbackEvent, Family};

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
}

impl fmt::Debug for ConfirmStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ConfirmStage")
            .field("client", &self.client)
            .field("mode", &self.mode)
            .finish()
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
        let answer = match self.client.details(route, family, event.task_id()).await {
            Ok(answer) => answer,
            Err(error) => {
                tracing::warn!(%error, %family, "confirm mode: task-details request failed");
                return Confirmation::NotYet;
            }
        };
        let synthetic = match SyntheticCallback::from_answer(&answer) {
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
        // The provider is behind the callback (it says `first`, the callback
        // `complete`): wait for it rather than dispatch a stage the callback did not
        // announce and answer the callback 200.
        if !synthetic.is_final() && confirmed.stage() != event.stage() {
            return Confirmation::NotYet;
        }
        Confirmation::Confirmed(Box::new(confirmed))
    }
}
