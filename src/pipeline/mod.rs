//! The pipeline: the one place that knows the order of the stages.
//!
//! 1. [`intake`](crate::pipeline::intake): method, content type, body size;
//! 2. [`envelope`](crate::event::envelope): the task id, family, stage and outcome;
//! 3. [`verify`](crate::verify): is it from the sender, and is its signature still
//!    bound to this `(family, stage, outcome)`; (confirm mode, feature
//!    `provider-api`: the provider's task-details answer replaces the body's outcome,
//!    and a reused signature under `SignatureReuse::Confirm` is confirmed the same way);
//! 4. [`claim`](crate::pipeline::claim): take the dedup key, or wait for whoever holds it; in inbox
//!    mode instead, store the body and its key in the inbox and answer (`crate::inbox`);
//! 5. [`dispatch`](crate::pipeline::dispatch): build the typed event, run its handler;
//! 6. [`settle`](crate::pipeline::settle): complete or release the key;
//!
//! and [`answer`](crate::answer) turns the result into a response. Stage 4 has one
//! entry, `Pipeline::admit`: a verified callback reaches it from stage 3, and the
//! events that need no verification (the reconciler's polls, confirmed callbacks)
//! through [`Pipeline::deliver_verified`] ([`admit::AdmitVerified`], what the
//! reconciler holds), with the same dedup keys.

#[cfg(feature = "provider-api")]
pub(crate) mod admit;
pub(crate) mod claim;
pub(crate) mod dispatch;
pub(crate) mod intake;
pub(crate) mod settle;

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use bytes::Bytes;
use http::{HeaderMap, Method, Request};
use http_body::Body;
use tracing::{Instrument, Span};

use self::claim::{ClaimOutcome, Waiters, claim_or_wait};
use self::dispatch::{Chosen, HandlerOutcome, Handlers, Invocation};
use self::settle::{Completing, settle};
use crate::answer::Answer;
use crate::detach::Detachable;
use crate::error::BoxError;
use crate::event::{CallbackEvent, Envelope, Family};
use crate::metrics::{self, Labels};
use crate::source::{self, EventSource};
use crate::store::{Claim, ClaimToken, DedupKey, DynStore};
use crate::timing::Timing;
use crate::untrusted::Untrusted;
use crate::verify::{
    BindingStage, SIGNATURE_HEADER, SignatureReuse, Unbound, VerifyError, VerifyRequest,
    VerifyStage,
};

/// A configured receiver's stages.
#[derive(Debug)]
pub(crate) struct Pipeline {
    pub(crate) body_limit: usize,
    pub(crate) verify: VerifyStage,
    /// Binds each signature an `HmacVerifier` accepted to its first use.
    pub(crate) binding: Option<BindingStage>,
    pub(crate) store: Arc<dyn DynStore>,
    pub(crate) waiters: Waiters,
    /// The keys processed here whose completion the store has not taken yet.
    pub(crate) completing: Arc<Completing>,
    /// Shared with the inbox's workers, which run the stored events with them.
    pub(crate) handlers: Arc<Handlers>,
    pub(crate) timing: Timing,
    /// Inbox mode: stage 4 stores the event, and the inbox's workers run stages 5-6.
    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    pub(crate) inbox: Option<crate::inbox::Inbox>,
    /// Confirm mode and the registry of expected tasks.
    #[cfg(feature = "provider-api")]
    pub(crate) provider: crate::provider::ProviderHooks,
}

/// A request after stage 1: what the later stages need of it.
#[derive(Debug)]
pub(crate) struct Inbound {
    pub(crate) headers: HeaderMap,
    pub(crate) peer: Option<SocketAddr>,
    /// The family the request's path names, if any.
    pub(crate) family: Option<Family>,
    pub(crate) body: Bytes,
}

impl Pipeline {
    /// Runs every stage on an HTTP request. Not an `async fn`: the future is
    /// [`receive`](Self::receive)'s own, with no layer around it to enlarge and copy.
    pub(crate) fn handle<B>(self: Arc<Self>, request: Request<B>) -> impl Future<Output = Answer>
    where
        B: Body + Send,
        B::Data: Send,
        B::Error: Into<BoxError>,
    {
        let (parts, body) = request.into_parts();
        let peer = intake::peer_addr(&parts.extensions);
        let family = Family::from_path(parts.uri.path());
        self.receive(parts.method, parts.headers, peer, family, body)
    }

    /// Runs every stage on a request given by its parts, for mountings whose request
    /// type is not an [`http::Request`] (actix-web). The body is read once.
    pub(crate) async fn receive<B>(
        self: Arc<Self>,
        method: Method,
        headers: HeaderMap,
        peer: Option<SocketAddr>,
        family: Option<Family>,
        body: B,
    ) -> Answer
    where
        B: Body,
        B::Error: Into<BoxError>,
    {
        if let Err(answer) = intake::check_head(&method, &headers, self.body_limit) {
            return log_intake(answer);
        }
        let body = match intake::read_body(body, self.body_limit).await {
            Ok(body) => body,
            Err(answer) => return log_intake(answer),
        };
        self.process(Inbound {
            headers,
            peer,
            family,
            body,
        })
        .await
    }

    /// Runs stages 2 to 6 on a request whose body has been read.
    pub(crate) async fn process(self: Arc<Self>, mut inbound: Inbound) -> Answer {
        // Marked sensitive, the signature never shows in a `Debug` of the headers.
        if let Some(signature) = inbound.headers.get_mut(SIGNATURE_HEADER) {
            signature.set_sensitive(true);
        }
        let envelope = match Envelope::parse(&inbound.body, inbound.family) {
            Ok(envelope) => envelope,
            Err(error) => {
                let reason = error.to_string();
                tracing::debug!(error = ?Untrusted(&reason), "callback refused: body is not a callback");
                let answer = Answer::invalid(http::StatusCode::BAD_REQUEST, reason);
                metrics::request(answer.label(), Labels::UNREAD);
                return answer;
            }
        };
        let key = DedupKey::of(
            envelope.task_id.as_str(),
            envelope.family,
            envelope.stage.as_str(),
            envelope.outcome,
        );
        let labels = Labels::of(key.family(), key.stage());
        let span = tracing::info_span!(
            "suno_callback",
            // Cut short and escaped: the values come from an unsigned body.
            task_id = ?Untrusted(key.task_id()),
            family = key.family().as_str(),
            stage = ?Untrusted(key.stage()),
            result = key.outcome().as_str(),
            outcome = tracing::field::Empty,
        );
        let answer = self
            .verified_process(inbound, envelope, key)
            .instrument(span.clone())
            .await;
        span.record("outcome", answer.label());
        // Counted under the key the callback was processed with: a failure without a
        // shape counts under the family its task was registered with.
        let labels = answer
            .key()
            .map_or(labels, |key| Labels::of(key.family(), key.stage()));
        metrics::request(answer.label(), labels);
        let status = answer.status_code().as_u16();
        span.in_scope(|| match &answer {
            Answer::Failed(..) | Answer::Unavailable(_) | Answer::InboxUnavailable(_) => {
                tracing::warn!(status, "callback answered");
            }
            // Refusals are logged at debug: anyone who can reach the endpoint can
            // cause them, and they must not flood the logs.
            Answer::Rejected(_) | Answer::Invalid(..) => {
                tracing::debug!(status, "callback answered");
            }
            _ => tracing::info!(status, "callback answered"),
        });
        answer
    }

    async fn verified_process(
        self: Arc<Self>,
        inbound: Inbound,
        envelope: Envelope,
        key: DedupKey,
    ) -> Answer {
        let Inbound {
            headers,
            peer,
            family,
            body,
        } = inbound;
        // Set by an `HmacVerifier` that accepts the signature: only then is it bound.
        let signed = AtomicBool::new(false);
        {
            let mut request = VerifyRequest::new(&headers, key.task_id(), &envelope.callback_type)
                .with_body(&body)
                .with_signed_flag(&signed);
            if let Some(peer) = peer {
                request = request.with_peer(peer);
            }
            if let Err(error) = self.verify.run(&request).await {
                tracing::debug!(%error, "callback refused by verification");
                return Answer::Rejected(error);
            }
        }
        // Set when the signature was first used by another callback.
        let mut reuse = None;
        // The claim made with the binding, in one store call, when nothing runs
        // between the two.
        let mut first_claim = None;
        if let Some(binding) = self
            .binding
            .as_ref()
            .filter(|_| signed.load(Ordering::Relaxed))
        {
            let bound = if self.claims_with_binding(&envelope) {
                binding
                    .bind_and_claim(
                        &*self.store,
                        self.timing.store_timeout,
                        &headers,
                        &key,
                        &body,
                        self.timing.lease,
                    )
                    .await
                    .map(|claim| first_claim = claim)
            } else {
                binding
                    .bind(
                        &*self.store,
                        self.timing.store_timeout,
                        &headers,
                        &key,
                        &body,
                    )
                    .await
            };
            match bound {
                Ok(()) => {}
                Err(Unbound::Reused(used)) => reuse = Some(used),
                Err(Unbound::Unavailable(error)) => {
                    tracing::warn!(%error, "dedup store unavailable");
                    return Answer::Unavailable(key);
                }
            }
        }
        drop(headers);
        #[cfg(feature = "provider-api")]
        let (envelope, key, family) = self.with_known_family(envelope, key, family, &body).await;
        // A different body under a used signature is refused (or confirmed) only where
        // it could run: once its own callback is processed (or stored), it is a
        // redelivery whose body was rebuilt on the way, and a duplicate.
        let mut reused = false;
        if let Some(reuse) = reuse {
            if self.already_taken(&key).await {
                return Answer::Duplicate(key);
            }
            if let Some(binding) = &self.binding {
                binding.report(&key, &reuse);
            }
            if reuse.policy == SignatureReuse::Refuse {
                return Answer::Rejected(VerifyError::reused_signature());
            }
            reused = true;
        }
        #[cfg(feature = "provider-api")]
        {
            use crate::provider::Confirmed;
            // A callback already processed is a duplicate: it costs no request to the
            // provider. (In inbox mode the inbox's insert is what tells.)
            if self.provider.may_confirm(envelope.family, reused)
                && self.inline_mode()
                && self.is_done(&key).await
            {
                return Answer::Duplicate(key);
            }
            match self.provider.confirm(&envelope, &body, reused).await {
                Confirmed::AsItCame => {}
                Confirmed::Provider(confirmed) => {
                    // In inbox mode the provider's version is what gets stored.
                    return self
                        .deliver_verified(*confirmed, EventSource::Confirmed)
                        .await;
                }
                Confirmed::NotYet => return Answer::Unconfirmed(key),
            }
        }
        #[cfg(not(feature = "provider-api"))]
        if reused {
            // Nothing can confirm it in this build: the sender retries.
            return Answer::Unconfirmed(key);
        }
        self.admit(Admission {
            key,
            unbuilt: Unbuilt::Envelope(envelope),
            body,
            family,
            source: EventSource::Callback,
            first_claim,
        })
        .await
    }

    /// Stages 4 to 6 (claim, dispatch, settle) on an event that needs no verification:
    /// a callback confirmed by the provider, or a synthetic callback built from the
    /// provider's task-details answer. Its dedup key is the one a callback of the same
    /// task, family, stage and outcome has, so whichever comes first runs the handler.
    /// Handlers see `source` as [`EventSource::current`].
    #[cfg(feature = "provider-api")]
    pub(crate) async fn deliver_verified(
        self: Arc<Self>,
        event: CallbackEvent,
        source: EventSource,
    ) -> Answer {
        let family = event.family();
        let key = DedupKey::of(
            event.task_id(),
            family,
            event.stage().as_str(),
            event.outcome(),
        );
        let body = event.raw_body().clone();
        self.admit(Admission {
            key,
            unbuilt: Unbuilt::Event(event),
            body,
            family: Some(family).filter(|family| *family != Family::Unknown),
            source,
            first_claim: None,
        })
        .await
    }

    /// Stage 4, the one entry of every verified event. In inbox mode the event is
    /// stored (a polled or confirmed event's task is then settled: its outcome is
    /// durable); otherwise its key is claimed and its handler run and settled (stages 5
    /// and 6), after which a final outcome settles its task in the registry.
    async fn admit(self: Arc<Self>, admission: Admission) -> Answer {
        let Admission {
            key,
            unbuilt,
            body,
            family,
            source,
            first_claim,
        } = admission;
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if let Some(inbox) = &self.inbox {
            let answer = inbox.accept(&key, &body).await;
            #[cfg(feature = "provider-api")]
            if source != EventSource::Callback
                && let Answer::Accepted(key) | Answer::Duplicate(key) = &answer
            {
                self.provider.settled_key(key).await;
            }
            return answer;
        }
        // A built event is routed as it is, without reading its body again.
        let chosen = unbuilt.route(&self.handlers);
        let answer = Arc::clone(&self)
            .claim_and_run(key, chosen, unbuilt, body, family, source, first_claim)
            .await;
        #[cfg(feature = "provider-api")]
        if let Answer::Processed(key) | Answer::Duplicate(key) | Answer::Ignored(key) = &answer {
            self.provider.settled_key(key).await;
        }
        answer
    }

    /// Whether a signed callback's binding and claim go to the store in one call: in
    /// inline mode, for a callback with a handler, when no confirm stage may run
    /// between them.
    fn claims_with_binding(&self, envelope: &Envelope) -> bool {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if self.inbox.is_some() {
            return false;
        }
        // With a reused signature (`true`), any confirm stage may run; and a body that
        // names no family may take its task's known family, and so another key.
        #[cfg(feature = "provider-api")]
        if self.provider.may_confirm(envelope.family, true) || envelope.family == Family::Unknown {
            return false;
        }
        self.handlers.route(envelope).is_some()
    }

    /// A verified callback whose body names no family (a failure that carries only its
    /// task id, on the shared path) takes the family its task is known by (registered,
    /// or settled here), so it makes the key a poll of the same failure makes, and its
    /// event is typed as that family.
    #[cfg(feature = "provider-api")]
    async fn with_known_family(
        &self,
        envelope: Envelope,
        key: DedupKey,
        family: Option<Family>,
        body: &Bytes,
    ) -> (Envelope, DedupKey, Option<Family>) {
        if envelope.family != Family::Unknown {
            return (envelope, key, family);
        }
        let Some(known) = self
            .provider
            .family_of(key.task_id())
            .await
            .filter(|known| *known != Family::Unknown)
        else {
            return (envelope, key, family);
        };
        match Envelope::parse(body, Some(known)) {
            Ok(typed) => {
                let key = DedupKey::of(&typed.task_id, typed.family, &typed.stage, typed.outcome);
                (typed, key, Some(known))
            }
            Err(_) => (envelope, key, family),
        }
    }

    /// Whether the callback of `key` is processed (inline mode) or stored in the inbox
    /// (inbox mode) already, so that nothing would run for it. A store or inbox error
    /// is "not known to be".
    async fn already_taken(&self, key: &DedupKey) -> bool {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if let Some(inbox) = &self.inbox {
            let rows = inbox.events_of_task(key.task_id());
            return match tokio::time::timeout(self.timing.store_timeout, rows).await {
                Ok(Ok(rows)) => rows.iter().any(|row| {
                    row.family == key.family().as_str()
                        && row.stage == key.stage()
                        && row.outcome == key.outcome().as_str()
                }),
                _ => false,
            };
        }
        self.is_done(key).await
    }

    /// Whether the callbacks are processed in the request (no inbox).
    #[cfg(feature = "provider-api")]
    fn inline_mode(&self) -> bool {
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        if self.inbox.is_some() {
            return false;
        }
        true
    }

    /// Whether `key` was processed already, asked with a claim that is released at once
    /// when it wins (the store has no lookup that would not race with a claim). Any
    /// other answer, a store error included, is "not known to be done".
    async fn is_done(&self, key: &DedupKey) -> bool {
        if self.completing.contains(key) {
            return true;
        }
        let claim = self.store.claim_boxed(key, self.timing.lease);
        match tokio::time::timeout(self.timing.store_timeout, claim).await {
            Ok(Ok(crate::store::Claim::Done)) => true,
            Ok(Ok(crate::store::Claim::Acquired(token))) => {
                let release = self.store.release_boxed(key, token);
                let _ = tokio::time::timeout(self.timing.store_timeout, release).await;
                false
            }
            _ => false,
        }
    }

    /// Stages 4 to 6 on a routed callback: claim, build the typed event (unless it is
    /// built already), run its handler, settle.
    #[allow(clippy::too_many_arguments)] // one per thing a delivery carries to its claim
    async fn claim_and_run(
        self: Arc<Self>,
        key: DedupKey,
        chosen: Option<Chosen>,
        unbuilt: Unbuilt,
        body: Bytes,
        family: Option<Family>,
        source: EventSource,
        first_claim: Option<Claim>,
    ) -> Answer {
        let Some(chosen) = chosen else {
            if let Some(Claim::Acquired(token)) = first_claim {
                // Claimed with the binding, but nothing runs it: hand the key back.
                let release = self.store.release_boxed(&key, token);
                let _ = tokio::time::timeout(self.timing.store_timeout, release).await;
            }
            return Answer::Ignored(key);
        };
        // Processed here; its completion is still being retried.
        if self.completing.contains(&key) {
            if let Some(Claim::Acquired(token)) = first_claim {
                // Its lease ran out while the completion is retried, and this delivery
                // claimed it afresh: the handler succeeded here, so complete it now
                // (the retry then finds it done) rather than leave it free for a
                // replay on another replica.
                let complete = self.store.complete_boxed(&key, token, self.timing.done_ttl);
                let _ = tokio::time::timeout(self.timing.store_timeout, complete).await;
            }
            return Answer::Duplicate(key);
        }
        // What a claiming delivery holds: its handler and envelope. The typed event is
        // built only once the key is claimed; a waiting delivery drops both.
        let claimed = match claim_or_wait(
            &*self.store,
            &self.waiters,
            &key,
            &self.timing,
            first_claim,
            (chosen, unbuilt, body.clone()),
            body,
        )
        .await
        {
            ClaimOutcome::Run(token, (chosen, unbuilt, body)) => {
                (token, chosen.bind(unbuilt.build(body)))
            }
            ClaimOutcome::RunFromBody(token, body) => match self.reroute(family, body) {
                Some(invocation) => (token, invocation),
                None => {
                    // The standby body came from a delivery of this same key, so it
                    // parses and routes like this one; should it not, the key goes
                    // back for the sender's retry.
                    let release = self.store.release_boxed(&key, token);
                    let _ = tokio::time::timeout(self.timing.store_timeout, release).await;
                    return Answer::InFlight(key);
                }
            },
            ClaimOutcome::Duplicate => return Answer::Duplicate(key),
            ClaimOutcome::StillInFlight => return Answer::InFlight(key),
            ClaimOutcome::Unavailable(error) => {
                tracing::warn!(%error, "dedup store unavailable");
                return Answer::Unavailable(key);
            }
        };
        self.run_claimed(key, claimed, source).await
    }

    /// The invocation for a body kept by the waiting deliveries of a key (all of which
    /// came on a path naming the same `family`, or none).
    fn reroute(&self, family: Option<Family>, body: Bytes) -> Option<Invocation> {
        let envelope = Envelope::parse(&body, family).ok()?;
        let chosen: Chosen = self.handlers.route(&envelope)?;
        Some(chosen.bind(CallbackEvent::build(envelope, body)))
    }

    /// Runs the handler of a claimed callback and settles its claim.
    async fn run_claimed(
        self: Arc<Self>,
        key: DedupKey,
        (token, invocation): (ClaimToken, Invocation),
        source: EventSource,
    ) -> Answer {
        // The handler and the settling of its claim run to their end even if the
        // connection drops mid-handler: in this task while it is awaited, as a task of
        // their own once it is dropped (cheaper than spawning a task per request).
        let pipeline = Arc::clone(&self);
        let task_key = key.clone();
        let run = Detachable::new(
            async move {
                let started = std::time::Instant::now();
                let outcome = source::scope(
                    source,
                    dispatch::run(invocation, pipeline.timing.handler_timeout),
                )
                .await;
                let succeeded = matches!(outcome, HandlerOutcome::Succeeded);
                metrics::handler(
                    Labels::of(task_key.family(), task_key.stage()),
                    succeeded,
                    started.elapsed(),
                );
                settle(
                    &pipeline.store,
                    &pipeline.completing,
                    &task_key,
                    token,
                    &outcome,
                    &pipeline.timing,
                )
                .await;
                outcome
            }
            .instrument(Span::current()),
        );
        match run.await {
            Ok(HandlerOutcome::Succeeded) => Answer::Processed(key),
            Ok(HandlerOutcome::Failed(error)) => {
                // The handler's message may quote the body: cut short and escaped.
                tracing::error!(error = ?Untrusted(&error.to_string()), "handler failed");
                Answer::Failed(key, "handler failed")
            }
            Ok(HandlerOutcome::Panicked(message)) => {
                tracing::error!(panic = ?Untrusted(&message), "handler panicked");
                Answer::Failed(key, "handler panicked")
            }
            Ok(HandlerOutcome::TimedOut) => {
                tracing::error!(
                    timeout_ms =
                        u64::try_from(self.timing.handler_timeout.as_millis()).unwrap_or(u64::MAX),
                    "handler timed out"
                );
                Answer::Failed(key, "handler timed out")
            }
            Err(panicked) => {
                tracing::error!(panicked = ?Untrusted(&panicked.to_string()), "handler task did not finish");
                Answer::Failed(key, "handler task did not finish")
            }
        }
    }
}

fn log_intake(answer: Answer) -> Answer {
    tracing::debug!(
        status = answer.status_code().as_u16(),
        "callback refused before parsing"
    );
    metrics::request(answer.label(), Labels::UNREAD);
    answer
}

/// What a claiming delivery turns into its typed event once it holds the key: the
/// envelope of a callback (its body is parsed in full only then), or an event the
/// provider API has built already.
enum Unbuilt {
    Envelope(Envelope),
    #[cfg(feature = "provider-api")]
    Event(CallbackEvent),
}

/// What stage 4 admits: the event (unbuilt), its key and body, the family its path
/// named (to parse a standby body alike), where it came from, and the claim made with
/// its signature's binding, if any.
struct Admission {
    key: DedupKey,
    unbuilt: Unbuilt,
    body: Bytes,
    family: Option<Family>,
    source: EventSource,
    first_claim: Option<Claim>,
}

#[cfg(feature = "provider-api")]
impl admit::AdmitVerified for Pipeline {
    fn admit_verified(
        self: Arc<Self>,
        event: CallbackEvent,
        source: EventSource,
    ) -> admit::Admitting {
        Box::pin(self.deliver_verified(event, source))
    }
}

impl Unbuilt {
    fn route(&self, handlers: &Handlers) -> Option<Chosen> {
        match self {
            Self::Envelope(envelope) => handlers.route(envelope),
            #[cfg(feature = "provider-api")]
            Self::Event(event) => handlers.route_event(event),
        }
    }

    fn build(self, body: Bytes) -> CallbackEvent {
        match self {
            Self::Envelope(envelope) => CallbackEvent::build(envelope, body),
            #[cfg(feature = "provider-api")]
            Self::Event(event) => event,
        }
    }
}
