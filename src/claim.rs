//! Stage 4 of the pipeline: claim the callback's dedup key, or wait a bounded time for
//! the delivery that holds it.

use std::time::Duration;

use tokio::time::{Instant, sleep};

use crate::deadline::timeout;

use crate::store::{Claim, ClaimToken, DedupKey, DynStore, StoreError};
use crate::timing::Timing;

/// The first pause between two claims of an in-flight key; it doubles up to
/// [`MAX_POLL_INTERVAL`].
const FIRST_POLL_INTERVAL: Duration = Duration::from_millis(5);
const MAX_POLL_INTERVAL: Duration = Duration::from_millis(250);

/// What the claim stage decided.
#[derive(Debug)]
pub(crate) enum ClaimOutcome {
    /// This delivery runs the handler.
    Run(ClaimToken),
    /// The callback was already processed.
    Duplicate,
    /// Another delivery still holds the key after the wait.
    StillInFlight,
    /// The store failed or timed out.
    Unavailable(StoreError),
}

/// Claims `key`. While another delivery holds it, claims again with a growing pause
/// until the key is done (a duplicate), free again (the other delivery failed and
/// released it: this one runs the handler), or `timing.in_flight_wait` has passed.
pub(crate) async fn claim_or_wait(
    store: &dyn DynStore,
    key: &DedupKey,
    timing: &Timing,
) -> ClaimOutcome {
    let now = Instant::now();
    // A wait too long to represent means "wait for as long as it takes".
    let give_up_at = now
        .checked_add(timing.in_flight_wait)
        .unwrap_or_else(|| now + Duration::from_secs(86_400 * 365));
    let mut pause = FIRST_POLL_INTERVAL;
    loop {
        let claimed =
            match timeout(timing.store_timeout, store.claim_boxed(key, timing.lease)).await {
                Ok(result) => result,
                Err(_elapsed) => Err(StoreError::unavailable("claim timed out")),
            };
        match claimed {
            Ok(Claim::Acquired(token)) => return ClaimOutcome::Run(token),
            Ok(Claim::Done) => return ClaimOutcome::Duplicate,
            Err(error) => return ClaimOutcome::Unavailable(error),
            Ok(Claim::InFlight) => {
                let now = Instant::now();
                if now >= give_up_at {
                    return ClaimOutcome::StillInFlight;
                }
                sleep(pause.min(give_up_at - now)).await;
                pause = (pause * 2).min(MAX_POLL_INTERVAL);
            }
        }
    }
}
