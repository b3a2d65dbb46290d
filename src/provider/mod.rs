//! Ask the provider (feature `provider-api`): a client for the task-details endpoints
//! of every family, the reconciler that recovers missed callbacks, and confirm mode,
//! which dispatches a callback's outcome only as the provider confirms it.
//!
//! The callback body is not signed; the task-details endpoint, reached over HTTPS
//! with the account's API key, is the one source of a task's outcome nobody can forge.
//! Its answers are mapped in one place ([`SyntheticCallback`]) to the body the sender
//! would have posted, so they become the same typed events, with the same dedup keys,
//! as the callbacks.
//!
//! | module | job |
//! |---|---|
//! | `client` | [`ProviderClient`]: requests, retries, timeouts |
//! | `family` | where each family's (and the jobs route's) task details are |
//! | `submit` | [`JobsTask`], [`SubmitError`]: creating a jobs-route task |
//! | `rate` | the global and per-task request rates |
//! | `status`, `answer` | [`TaskStatus`], [`TaskAnswer`]: reading an answer |
//! | `map` | [`SyntheticCallback`]: an answer as a callback body |
//! | `registry` | [`TaskRegistry`], [`MemoryRegistry`]: the expected tasks |
//! | `registry_redis` | `RedisRegistry` (feature `redis`): shared by replicas |
//! | `reconcile` | [`Reconciler`]: polling them |
//! | `confirm` | [`ConfirmMode`]: the stage between verify and claim |

mod answer;
mod client;
mod confirm;
mod error;
mod family;
mod map;
mod rate;
mod reconcile;
mod registry;
#[cfg(feature = "redis")]
mod registry_redis;
mod status;
mod submit;

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

pub use answer::{TaskAnswer, TaskPayload};
pub use client::{
    DEFAULT_MAX_RETRIES, DEFAULT_REQUEST_TIMEOUT, DEFAULT_REQUESTS_PER_SECOND, KIE_BASE_URL,
    ProviderClient, ProviderClientBuilder, SUNOAPI_BASE_URL,
};
pub use confirm::ConfirmMode;
pub use error::{AnswerError, ProviderError};
pub use family::record_info_path;
pub use map::{Outcome, SyntheticCallback};
pub use reconcile::{
    DEFAULT_MAX_AGE, DEFAULT_MAX_RECONCILE_INTERVAL, DEFAULT_RECONCILE_AFTER,
    DEFAULT_RECONCILE_INTERVAL, PollReport, Reconciler, ReconcilerBuilder,
};
pub use registry::{
    DEFAULT_MAX_EXPECTED_TASKS, ExpectedTask, MAX_POLL_ANSWER_CHARS, MemoryRegistry, RegistryError,
    SETTLED_FAMILY_TTL, TaskRegistry,
};
#[cfg(feature = "redis")]
#[cfg_attr(docsrs, doc(cfg(feature = "redis")))]
pub use registry_redis::{DEFAULT_REGISTRY_PREFIX, RedisRegistry};
pub use status::TaskStatus;
pub use submit::{JobsTask, SubmitError};

pub(crate) use family::stored_family;
pub(crate) use map::is_final;
pub(crate) use registry::{DynRegistry, cut_poll_answer, millis, unix_millis};

use bytes::Bytes;

use crate::event::{CallbackEvent, Envelope};
use crate::store::DedupKey;
use confirm::{ConfirmStage, Confirmation};

/// How long a registry call from the request path may take.
const REGISTRY_TIMEOUT: Duration = Duration::from_secs(2);

/// How long confirm mode may ask the provider: below the sender's 15 s wait, so a slow
/// provider is answered `503` (and retried) rather than timed out by the sender.
const CONFIRM_TIMEOUT: Duration = Duration::from_secs(8);

/// What confirm mode decided about a verified callback.
#[derive(Debug)]
pub(crate) enum Confirmed {
    /// Not confirmed (its family is not in the mode): dispatch it as it came.
    AsItCame,
    /// Dispatch this event, built from the provider's answer.
    Provider(Box<CallbackEvent>),
    /// The provider does not confirm an outcome yet: answer `503`.
    NotYet,
}

/// What the pipeline needs of this module: confirm mode and the registry of expected
/// tasks.
#[derive(Debug)]
pub(crate) struct ProviderHooks {
    pub(crate) registry: Arc<dyn DynRegistry>,
    pub(crate) confirm: Option<ConfirmStage>,
    /// The family each task's final outcome was keyed with when it reached the
    /// handlers here, for a late callback of such a task (no longer in the registry).
    settled_families: SettledFamilies,
}

/// How many settled tasks' families [`SettledFamilies`] keeps at least (and at most
/// twice as many).
const SETTLED_FAMILIES: usize = 16_384;

/// The families recently settled tasks were keyed with: two generations of at most
/// [`SETTLED_FAMILIES`] each, the older dropped when the newer is full, so memory is
/// bounded whatever the traffic. The first family a task settled with stays (a
/// failure keyed `unknown` stays so, and its redeliveries stay its duplicates).
#[derive(Debug, Default)]
struct SettledFamilies {
    generations: Mutex<[HashMap<String, crate::Family>; 2]>,
}

impl SettledFamilies {
    fn insert(&self, task_id: &str, family: crate::Family) {
        let mut generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        if generations.iter().any(|map| map.contains_key(task_id)) {
            return;
        }
        if generations[0].len() >= SETTLED_FAMILIES {
            generations[1] = std::mem::take(&mut generations[0]);
        }
        generations[0].insert(task_id.to_owned(), family);
    }

    fn get(&self, task_id: &str) -> Option<crate::Family> {
        let generations = self
            .generations
            .lock()
            .unwrap_or_else(PoisonError::into_inner);
        generations.iter().find_map(|map| map.get(task_id).copied())
    }
}

impl ProviderHooks {
    pub(crate) fn new(
        registry: Option<Arc<dyn DynRegistry>>,
        confirm: Option<(ProviderClient, ConfirmMode)>,
    ) -> Self {
        Self {
            registry: registry.unwrap_or_else(|| Arc::new(MemoryRegistry::new())),
            confirm: confirm.map(|(client, mode)| ConfirmStage::new(client, mode)),
            settled_families: SettledFamilies::default(),
        }
    }

    /// The family a final outcome of `task_id` was keyed with in this process (maybe
    /// `Unknown`: its redeliveries keep that key), else the family the registry knows
    /// (registered, or kept since the task settled, maybe on another replica). `None`
    /// when neither knows it (or the registry does not answer in time).
    pub(crate) async fn family_of(&self, task_id: &str) -> Option<crate::Family> {
        if let Some(settled_here) = self.settled_families.get(task_id) {
            return Some(settled_here);
        }
        let registered =
            match tokio::time::timeout(REGISTRY_TIMEOUT, self.registry.family_of_boxed(task_id))
                .await
            {
                Ok(Ok(family)) => family,
                Ok(Err(error)) => {
                    tracing::warn!(%error, "could not read the task's registered family");
                    None
                }
                Err(_elapsed) => {
                    tracing::warn!("task registry timed out reading the task's family");
                    None
                }
            };
        registered.filter(|family| *family != crate::Family::Unknown)
    }

    /// Whether the confirm stage may ask the provider about a callback of `family`
    /// (its task's registered family may still decide otherwise when `family` is
    /// unknown).
    pub(crate) fn may_confirm(&self, family: crate::Family, reused: bool) -> bool {
        let Some(stage) = &self.confirm else {
            return false;
        };
        reused
            || stage.mode.applies_to_all()
            || family == crate::Family::Unknown
            || stage.mode.applies_to(family)
    }

    /// The confirm stage on a verified callback (`reused`: its signature was first
    /// used by another callback, and the policy hands it over to this stage).
    pub(crate) async fn confirm(
        &self,
        envelope: &Envelope,
        body: &Bytes,
        reused: bool,
    ) -> Confirmed {
        let Some(stage) = &self.confirm else {
            if reused {
                tracing::warn!(
                    "reused signature: no provider client configured to confirm the callback"
                );
                return Confirmed::NotYet;
            }
            return Confirmed::AsItCame;
        };
        let event = CallbackEvent::build(envelope.clone(), body.clone());
        let asked =
            tokio::time::timeout(CONFIRM_TIMEOUT, stage.run(&event, &*self.registry, reused));
        match asked.await.unwrap_or(Confirmation::NotYet) {
            Confirmation::NotApplicable => Confirmed::AsItCame,
            Confirmation::Confirmed(confirmed) => Confirmed::Provider(confirmed),
            Confirmation::NotYet => Confirmed::NotYet,
        }
    }

    /// After stages 4 to 6 on the event of `key` that reached the handlers (processed,
    /// duplicate or ignored): a final outcome means the task is no longer expected.
    pub(crate) async fn settled_key(&self, key: &DedupKey) {
        if is_final(key.stage(), key.outcome()) {
            self.settled_families.insert(key.task_id(), key.family());
            self.settled(key.task_id(), key.family()).await;
        }
    }

    /// The task is no longer expected: its final outcome reached the handlers, keyed
    /// with `keyed_as`, the family the registry keeps for its late callbacks.
    pub(crate) async fn settled(&self, task_id: &str, keyed_as: crate::Family) {
        let done = self.registry.done_as_boxed(task_id, keyed_as);
        match tokio::time::timeout(REGISTRY_TIMEOUT, done).await {
            Ok(Ok(())) => {}
            Ok(Err(error)) => tracing::warn!(%error, "could not mark the task done"),
            Err(_elapsed) => tracing::warn!("task registry timed out marking the task done"),
        }
    }
}
