//! The end of stage 3: a verified signature is bound to its first use.
//!
//! The sender signs only `task_id + "." + timestamp`, never the body. Whoever holds one
//! signed request of a task can send any body with its headers, for as long as its
//! timestamp is within tolerance. So the first body a signature is accepted with (its
//! family, `callbackType`, outcome and a digest of its bytes) is recorded in the dedup
//! store ([`DedupStore::bind_signature`]), and another body presenting the same
//! signature is refused (or, with [`SignatureReuse::Confirm`], held for confirmation),
//! even one of the same stage, where it could run. A byte-identical replay passes, to be
//! answered as the ordinary duplicate it is; so does a redelivery whose body was rebuilt
//! (same signature, other bytes) once its callback is processed (or stored, in inbox
//! mode): nothing would run, and the pipeline answers it `200 duplicate`.
//!
//! [`DedupStore::bind_signature`]: crate::store::DedupStore::bind_signature

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use http::HeaderMap;
use tokio::time::timeout;

use super::Clock;
use super::hmac::{TIMESTAMP_HEADER, parse_unix_seconds};
use crate::event::Outcome;
use crate::store::{Binding, Claim, DedupKey, DynStore, SignatureUse, StoreError};
use crate::untrusted::Untrusted;

/// How much longer than the timestamp's tolerance a binding is kept, for replicas
/// whose clocks differ a little.
pub const BINDING_MARGIN: Duration = Duration::from_secs(60);

/// What the receiver does with a valid signature presented with another body
/// (family, `callbackType`, outcome or bytes) than the one it was first accepted with. Set with
/// [`SunoCallbacksBuilder::signature_reuse`](crate::SunoCallbacksBuilder::signature_reuse).
///
/// ```
/// use suno_callback::verify::SignatureReuse;
///
/// assert_eq!(SignatureReuse::default(), SignatureReuse::Refuse);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum SignatureReuse {
    /// Answer `401` (`rejected`, reason "signature already used by another
    /// callback"), log it at `warn` and count it. The default. A genuine second
    /// callback of a task signed in the same second as the first (same timestamp,
    /// same signature) is refused too, until a retry carries a new timestamp. A body
    /// whose own callback is processed already (a redelivery rebuilt on the way) is
    /// answered `200 duplicate` instead, under either policy: nothing would run.
    #[default]
    Refuse,
    /// Hand the request to confirm mode (feature `provider-api`, a client set with
    /// `SunoCallbacksBuilder::confirm`, whatever families its mode names): the
    /// provider's task-details endpoint is asked, and what it says is dispatched, never
    /// the body. While the provider does not know the outcome, or without a client, the
    /// request is answered `503` with `Retry-After` (and logged and counted like a
    /// refusal), so the sender retries it later instead of losing it.
    Confirm,
}

/// Why a verified request was not let through by its binding.
#[derive(Debug)]
pub(crate) enum Unbound {
    /// The signature was first used with another body.
    Reused(Reuse),
    /// The store failed or timed out.
    Unavailable(StoreError),
}

/// A signature first used with another body: what the policy says of it, and the
/// signed timestamp (for the log line).
#[derive(Debug)]
pub(crate) struct Reuse {
    pub(crate) policy: SignatureReuse,
    timestamp: String,
}

/// The binding step as the pipeline runs it, after the HMAC check.
pub(crate) struct BindingStage {
    tolerance_seconds: u64,
    clock: Arc<dyn Clock>,
    policy: SignatureReuse,
    reused: AtomicU64,
}

impl std::fmt::Debug for BindingStage {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BindingStage")
            .field("tolerance_seconds", &self.tolerance_seconds)
            .field("policy", &self.policy)
            .field("reused", &self.reused())
            .finish_non_exhaustive()
    }
}

impl BindingStage {
    pub(crate) fn new(tolerance: Duration, clock: Arc<dyn Clock>, policy: SignatureReuse) -> Self {
        Self {
            tolerance_seconds: tolerance.as_secs(),
            clock,
            policy,
            reused: AtomicU64::new(0),
        }
    }

    /// How many requests presented a signature already bound to another use.
    pub(crate) fn reused(&self) -> u64 {
        self.reused.load(Ordering::Relaxed)
    }

    /// How long a binding of a signature timestamped `sent_at` must last: until the
    /// timestamp leaves the tolerance, plus [`BINDING_MARGIN`].
    fn ttl(&self, sent_at: i64) -> Duration {
        let leaves_tolerance = sent_at.saturating_add_unsigned(self.tolerance_seconds);
        let remaining = leaves_tolerance.saturating_sub(self.clock.unix_seconds());
        Duration::from_secs(u64::try_from(remaining).unwrap_or(0)).saturating_add(BINDING_MARGIN)
    }

    /// The use of the request's signature (already verified), and how long to bind
    /// it; `None` without a timestamp (then nothing is signed, nothing bound).
    fn signature_use(
        &self,
        headers: &HeaderMap,
        key: &DedupKey,
        body: &bytes::Bytes,
    ) -> Option<(SignatureUse, Duration)> {
        // The HMAC check has accepted this header; without it there is nothing signed.
        let timestamp = headers.get(TIMESTAMP_HEADER)?;
        let sent_at = parse_unix_seconds(timestamp.as_bytes())?;
        let timestamp = timestamp.to_str().ok()?;
        let signature = SignatureUse::new(
            key.task_id(),
            timestamp,
            key.stage(),
            key.outcome() == Outcome::Failure,
        )
        .with_family(key.family())
        .with_body(body.clone());
        Some((signature, self.ttl(sent_at)))
    }

    /// Binds the request's signature (already verified) to its use, or says why not.
    pub(crate) async fn bind(
        &self,
        store: &dyn DynStore,
        store_timeout: Duration,
        headers: &HeaderMap,
        key: &DedupKey,
        body: &bytes::Bytes,
    ) -> Result<(), Unbound> {
        let Some((signature, ttl)) = self.signature_use(headers, key, body) else {
            return Ok(());
        };
        let bound = match timeout(store_timeout, store.bind_signature_boxed(&signature, ttl)).await
        {
            Ok(result) => result.map_err(Unbound::Unavailable)?,
            Err(_elapsed) => {
                return Err(Unbound::Unavailable(StoreError::unavailable(
                    "signature binding timed out",
                )));
            }
        };
        self.judge(bound, &signature)
    }

    /// Binds the request's signature and claims `key` for `lease` in one store call
    /// ([`DedupStore::bind_and_claim`]), for a callback that goes straight to its
    /// claim. `Ok(None)`: nothing is signed, and nothing was claimed.
    ///
    /// [`DedupStore::bind_and_claim`]: crate::store::DedupStore::bind_and_claim
    pub(crate) async fn bind_and_claim(
        &self,
        store: &dyn DynStore,
        store_timeout: Duration,
        headers: &HeaderMap,
        key: &DedupKey,
        body: &bytes::Bytes,
        lease: Duration,
    ) -> Result<Option<Claim>, Unbound> {
        let Some((signature, ttl)) = self.signature_use(headers, key, body) else {
            return Ok(None);
        };
        let call = store.bind_and_claim_boxed(&signature, ttl, key, lease);
        let (bound, claim) = match timeout(store_timeout, call).await {
            Ok(result) => result.map_err(Unbound::Unavailable)?,
            Err(_elapsed) => {
                return Err(Unbound::Unavailable(StoreError::unavailable(
                    "signature binding and claim timed out",
                )));
            }
        };
        self.judge(bound, &signature)?;
        match claim {
            Some(claim) => Ok(Some(claim)),
            // A store that bound the signature must have claimed the key.
            None => Err(Unbound::Unavailable(StoreError::unavailable(
                "the store bound the signature without claiming the key",
            ))),
        }
    }

    /// What a binding lets through.
    fn judge(&self, bound: Binding, signature: &SignatureUse) -> Result<(), Unbound> {
        match bound {
            Binding::First | Binding::Same => Ok(()),
            Binding::Other => Err(Unbound::Reused(Reuse {
                policy: self.policy,
                timestamp: signature.timestamp().to_owned(),
            })),
        }
    }

    /// Counts and logs a reused signature the pipeline refuses or holds for
    /// confirmation (not one whose callback is known to be processed already: that is a
    /// redelivery with a rebuilt body, answered as the duplicate it is).
    pub(crate) fn report(&self, key: &DedupKey, reuse: &Reuse) {
        self.reused.fetch_add(1, Ordering::Relaxed);
        tracing::warn!(
            task_id = ?Untrusted(key.task_id()),
            family = key.family().as_str(),
            stage = ?Untrusted(key.stage()),
            result = key.outcome().as_str(),
            timestamp = reuse.timestamp,
            policy = ?reuse.policy,
            "signature already used by another callback: body not the one it was sent with"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::verify::ManualClock;

    #[test]
    fn bindings_last_while_the_timestamp_is_within_tolerance() {
        let clock = ManualClock::new(1_700_000_000);
        let stage = BindingStage::new(
            Duration::from_secs(1800),
            Arc::new(clock.clone()),
            SignatureReuse::Refuse,
        );
        assert_eq!(stage.ttl(1_700_000_000), Duration::from_secs(1800 + 60));
        // Sent 20 minutes ago: 10 minutes of tolerance left.
        assert_eq!(
            stage.ttl(1_700_000_000 - 1200),
            Duration::from_secs(600 + 60)
        );
        // Sent ahead of our clock: tolerance lasts longer.
        assert_eq!(
            stage.ttl(1_700_000_000 + 100),
            Duration::from_secs(1900 + 60)
        );
        clock.advance(10_000);
        assert_eq!(stage.ttl(1_700_000_000), BINDING_MARGIN);
    }
}
