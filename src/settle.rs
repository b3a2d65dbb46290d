//! Stage 6 of the pipeline: record the handler's outcome in the dedup store. Success
//! completes the key (later deliveries are duplicates for the TTL); anything else
//! releases it, so the sender's retry runs the handler again.

use crate::deadline::timeout;

use crate::dispatch::HandlerOutcome;
use crate::store::{ClaimToken, DedupKey, DynStore, StoreError};
use crate::timing::Timing;

/// Completes or releases the claim. A failure here cannot change the answer (the
/// handler has already run), so it is logged: a lost claim means the handler outlived
/// its lease, and an unavailable store means the key expires with its lease instead.
pub(crate) async fn settle(
    store: &dyn DynStore,
    key: &DedupKey,
    token: ClaimToken,
    outcome: &HandlerOutcome,
    timing: &Timing,
) {
    let succeeded = matches!(outcome, HandlerOutcome::Succeeded);
    let operation = async {
        if succeeded {
            store.complete_boxed(key, token, timing.done_ttl).await
        } else {
            store.release_boxed(key, token).await
        }
    };
    let result = match timeout(timing.store_timeout, operation).await {
        Ok(result) => result,
        Err(_elapsed) => Err(StoreError::unavailable("store call timed out")),
    };
    if let Err(error) = result {
        let action = if succeeded { "complete" } else { "release" };
        if error.is_claim_lost() {
            tracing::warn!(
                action,
                "claim was lost before it could be settled (the handler outlived its \
                 lease); another delivery may run the handler again"
            );
        } else {
            tracing::warn!(action, %error, "could not settle the claim; it expires with its lease");
        }
    }
}
