//! Stage 6 of the pipeline: record the handler's outcome in the dedup store. Success
//! completes the key (later deliveries are duplicates for the TTL); anything else
//! releases it, so the sender's retry runs the handler again.
//!
//! A success is never forgotten because one write failed: when the store does not take
//! the completion (down, refusing writes, too slow), the claim is kept and the
//! completion is retried in the background, with a bounded backoff, until it lands;
//! meanwhile this process answers deliveries of the key as duplicates. If the claim's
//! lease ran out in the store meanwhile, the key is claimed again and completed at
//! once. The retries stop once the key would have expired anyway (its done TTL, longer
//! than any replay's validity), with an error log.

use std::collections::HashSet;
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use crate::deadline::timeout;

use crate::pipeline::dispatch::HandlerOutcome;
use crate::store::{Claim, ClaimToken, DedupKey, DynStore, StoreError};
use crate::timing::Timing;

/// The first pause before a completion is retried; it doubles up to
/// [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(100);
/// The longest pause between two tries of a completion.
const MAX_RETRY_PAUSE: Duration = Duration::from_secs(2);

/// The keys whose handler succeeded here but whose completion the store has not taken
/// yet. The claim stage answers them as duplicates.
#[derive(Default)]
pub(crate) struct Completing {
    keys: Mutex<HashSet<DedupKey>>,
}

impl fmt::Debug for Completing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Completing")
            .field("keys", &self.lock().len())
            .finish()
    }
}

impl Completing {
    /// Whether the completion of `key` is being retried here.
    pub(crate) fn contains(&self, key: &DedupKey) -> bool {
        self.lock().contains(key)
    }

    fn lock(&self) -> MutexGuard<'_, HashSet<DedupKey>> {
        self.keys.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// Completes or releases the claim. A failure here cannot change the answer (the
/// handler has already run). A completion the store did not take is retried in the
/// background (see the module's docs); a lost claim means the handler outlived its
/// lease, and is logged; a release that fails leaves the key to expire with its lease.
pub(crate) async fn settle(
    store: &Arc<dyn DynStore>,
    completing: &Arc<Completing>,
    key: &DedupKey,
    token: ClaimToken,
    outcome: &HandlerOutcome,
    timing: &Timing,
) {
    let succeeded = matches!(outcome, HandlerOutcome::Succeeded);
    let result = if succeeded {
        complete(&**store, key, token, timing).await
    } else {
        call(timing, store.release_boxed(key, token)).await
    };
    let Err(error) = result else {
        return;
    };
    let action = if succeeded { "complete" } else { "release" };
    if error.is_claim_lost() {
        tracing::warn!(
            action,
            "claim was lost before it could be settled (the handler outlived its \
             lease); another delivery may run the handler again"
        );
    }
    if succeeded {
        if !error.is_claim_lost() {
            tracing::warn!(%error, "could not complete the claim; keeping it and retrying in the background");
        }
        // A lost claim is taken again if it is free, so that a replay finds it done.
        let held = (!error.is_claim_lost()).then_some(token);
        completing.lock().insert(key.clone());
        let (store, completing, key, timing) = (
            Arc::clone(store),
            Arc::clone(completing),
            key.clone(),
            *timing,
        );
        tokio::spawn(async move {
            retry_completion(&*store, &key, held, &timing).await;
            completing.lock().remove(&key);
        });
    } else if !error.is_claim_lost() {
        tracing::warn!(action, %error, "could not settle the claim; it expires with its lease");
    }
}

async fn call<T>(
    timing: &Timing,
    operation: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    match timeout(timing.store_timeout, operation).await {
        Ok(result) => result,
        Err(_elapsed) => Err(StoreError::unavailable("store call timed out")),
    }
}

async fn complete(
    store: &dyn DynStore,
    key: &DedupKey,
    token: ClaimToken,
    timing: &Timing,
) -> Result<(), StoreError> {
    call(timing, store.complete_boxed(key, token, timing.done_ttl)).await
}

/// Tries the completion of `key` until it lands, the key turns out done or claimed by
/// another delivery, or the done TTL has passed.
async fn retry_completion(
    store: &dyn DynStore,
    key: &DedupKey,
    mut token: Option<ClaimToken>,
    timing: &Timing,
) {
    let started = tokio::time::Instant::now();
    let mut pause = FIRST_RETRY_PAUSE;
    let mut tries: u32 = 1;
    loop {
        if started.elapsed() >= timing.done_ttl {
            tracing::error!(
                tries,
                "the dedup store never took the completion of a processed callback; \
                 a replay of it may run its handler again"
            );
            return;
        }
        tokio::time::sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
        tries = tries.saturating_add(1);
        let result = match token {
            Some(held) => complete(store, key, held, timing).await,
            // The lease ran out in the store: claim the key again to complete it.
            None => match call(timing, store.claim_boxed(key, timing.lease)).await {
                Ok(Claim::Acquired(held)) => {
                    token = Some(held);
                    complete(store, key, held, timing).await
                }
                Ok(Claim::Done) => Ok(()),
                Ok(Claim::InFlight) => {
                    tracing::warn!(
                        tries,
                        "the claim of a processed callback lapsed before its completion \
                         landed, and another delivery holds it now"
                    );
                    return;
                }
                Err(error) => Err(error),
            },
        };
        match result {
            Ok(()) => {
                tracing::info!(tries, "completion of a processed callback landed");
                return;
            }
            Err(error) if error.is_claim_lost() => token = None,
            Err(error) => tracing::debug!(%error, tries, "completion still not taken"),
        }
    }
}
