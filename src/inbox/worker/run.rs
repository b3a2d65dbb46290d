//! One run: the handler of a leased event, the transition its end names, stored under
//! the lease, and one report of what was stored.

use tokio::time::{Instant, timeout_at};

use super::Worker;
use super::decision::{self, Ending, Transition};
use super::heartbeat::{LeaseClock, LeaseEnd};
use crate::event::{CallbackEvent, Family, ParseError};
use crate::inbox::backend::Tx;
use crate::inbox::context::EventContext;
use crate::inbox::error::InboxError;
use crate::inbox::rows::Leased;
use crate::inbox::types::{RunReport, RunResult, cut_error};
use crate::metrics::{self, InboxCount};
use crate::pipeline::dispatch::{self, HandlerOutcome};
use crate::untrusted::Untrusted;

/// The stored body as its typed event. A known stored family (the one a per-family path
/// named, or the one the body's shape gave) types it as that family, as the request
/// did: a failure carrying only its task id, received on `/callbacks/suno/wav`, runs as
/// a wav failure. `unknown` (or a name this version does not know) reads the shape
/// again.
fn rebuild(family: &str, body: bytes::Bytes) -> Result<CallbackEvent, ParseError> {
    // `from_name` knows only the named families, never `unknown`.
    match Family::from_name(family) {
        Some(family) => CallbackEvent::from_json_as(family, body),
        None => CallbackEvent::from_json(body),
    }
}

/// One leased event and what its run learns, for the transition and the report.
pub(super) struct Run {
    pub(super) event: Leased,
    /// The lease token (one per lease statement; the row's id tells its rows apart).
    pub(super) token: std::sync::Arc<str>,
    pub(super) span: tracing::Span,
    pub(super) lease: LeaseClock,
}

impl Run {
    fn report(&self, result: RunResult, error: Option<String>) -> RunReport {
        RunReport {
            id: self.event.id,
            task_id: self.event.task_id.clone(),
            family: self.event.family.clone(),
            stage: self.event.stage.clone(),
            outcome: self.event.outcome.clone(),
            attempt: self.event.attempt,
            result,
            error,
        }
    }
}

impl Worker {
    /// One leased event: run its handler (unless it cannot run), then store the
    /// transition its end names, and report what was stored, once.
    pub(super) async fn run_one(&self, run: Run) {
        let event = &run.event;
        run.span
            .in_scope(|| tracing::info!(inbox_event = "attempt", "inbox event leased"));
        metrics::inbox(InboxCount::Attempt, &event.family);
        let limits = self.limits();
        let (ending, why, transaction) = if !decision::may_start(event.attempt, &limits) {
            let why = format!(
                "gave up after {} attempts over {} s",
                event.attempt.saturating_sub(1),
                event.age.as_secs()
            );
            (Ending::OutOfAttempts, Some(why), None)
        } else {
            match rebuild(&event.family, event.body.clone()) {
                Err(error) => {
                    let why = cut_error(&format!("stored body is not a callback: {error}"));
                    (Ending::Unreadable, Some(why), None)
                }
                Ok(parsed) => match self.handlers.route_event(&parsed) {
                    None => {
                        // No handler (and no fallback): done, as inline mode answers
                        // `200 ignored`. A replay runs it once a handler exists.
                        run.span.in_scope(|| {
                            tracing::info!(
                                inbox_event = "ignored",
                                "no handler for the inbox event"
                            );
                        });
                        (Ending::Succeeded, None, None)
                    }
                    Some(handler) => match self.execute(&run, handler.bind(parsed)).await {
                        Some(ended) => ended,
                        None => return,
                    },
                },
            }
        };
        let transition = decision::decide(
            &ending,
            event.attempt,
            event.age,
            &limits,
            crate::store::random_u64(),
        );
        let stored = self
            .store(&run, transition, why.as_deref(), transaction)
            .await;
        self.report(&run, transition, stored, why);
    }

    /// Runs the handler while the heartbeat keeps the lease. `None` when the lease
    /// could not be kept: the run was dropped and nothing is stored.
    async fn execute(
        &self,
        run: &Run,
        invocation: dispatch::Invocation,
    ) -> Option<(Ending, Option<String>, Option<Tx>)> {
        let config = self.inbox.config();
        let event = &run.event;
        let context = EventContext::new(
            event.id,
            event.attempt,
            event.task_id.clone(),
            event.family.clone(),
            event.stage.clone(),
            self.inbox.backend().clone(),
        );
        let mut abort = self.abort.clone();
        let handler = context
            .clone()
            .scope(dispatch::run(invocation, config.handler_timeout));
        let ended = tokio::select! {
            outcome = tracing::Instrument::instrument(handler, run.span.clone()) => Ok(outcome),
            lost = self.keep_lease(run) => Err(Some(lost)),
            _ = abort.wait_for(Option::is_some) => Err(None),
        };
        // The handler's future is dropped here, and with `transaction` unless it is
        // committed with the event's `done`.
        let transaction = context.take_transaction().await;
        let outcome = match ended {
            Ok(outcome) => outcome,
            Err(None) => return Some((Ending::Interrupted, Some("shutdown".to_owned()), None)),
            Err(Some(lost)) => {
                drop(transaction);
                let why = match lost {
                    LeaseEnd::Expiring => "the lease could not be extended in time",
                    LeaseEnd::Taken => "another worker took the lease",
                };
                run.span.in_scope(|| {
                    tracing::warn!(
                        reason = why,
                        "inbox run stopped before its lease could pass to another worker; \
                         the event runs again once the lease ends"
                    );
                });
                self.inbox
                    .report(&run.report(RunResult::LeaseLost, Some(why.to_owned())));
                return None;
            }
        };
        let why = match outcome {
            HandlerOutcome::Succeeded => return Some((Ending::Succeeded, None, transaction)),
            HandlerOutcome::Failed(error) => cut_error(&format!("handler failed: {error}")),
            HandlerOutcome::Panicked(message) => cut_error(&format!("handler panicked: {message}")),
            HandlerOutcome::TimedOut => format!(
                "handler timed out after {} ms",
                config.handler_timeout.as_millis()
            ),
        };
        Some((Ending::Failed, Some(why), None))
    }

    /// Stores `transition` under the run's lease, within the database time limit and
    /// before the lease ends (a release: before the shutdown deadline). `true` once
    /// committed.
    async fn store(
        &self,
        run: &Run,
        transition: Transition,
        why: Option<&str>,
        transaction: Option<Tx>,
    ) -> bool {
        let config = self.inbox.config();
        let backend = self.inbox.backend();
        let (id, token) = (run.event.id, &*run.token);
        let limit = match *self.abort.borrow() {
            Some(deadline) if transition == Transition::Release => deadline,
            _ => (Instant::now() + config.store_timeout).min(run.lease.expires()),
        };
        let why = why.unwrap_or("");
        let stored: Result<bool, InboxError> = match transition {
            Transition::Done => timeout_at(limit, backend.complete(id, token, transaction)).await,
            Transition::RetryAfter(after) => {
                timeout_at(limit, backend.retry(id, token, after, why)).await
            }
            Transition::Dead => timeout_at(limit, backend.bury(id, token, why)).await,
            Transition::Release => timeout_at(limit, backend.release(id, token)).await,
        }
        .unwrap_or_else(|_elapsed| Err(InboxError::unavailable("timed out")));
        match stored {
            Ok(true) => {
                self.health.succeeded();
                true
            }
            Ok(false) => false,
            Err(error) => {
                self.health.failed("settle", &error);
                run.span.in_scope(|| {
                    tracing::warn!(
                        %error,
                        "could not store the inbox event's outcome; it runs again when its \
                         lease ends"
                    );
                });
                false
            }
        }
    }

    /// Logs and reports the run once: what was stored, or that nothing was.
    fn report(&self, run: &Run, transition: Transition, stored: bool, why: Option<String>) {
        let event = &run.event;
        let span = &run.span;
        let result = match (stored, transition) {
            (false, _) => {
                span.in_scope(|| {
                    tracing::warn!(
                        inbox_event = "lease_lost",
                        "inbox lease lost before the outcome was stored; another worker may \
                         run the event again"
                    );
                });
                let why = why.unwrap_or_else(|| "lease lost".to_owned());
                self.inbox
                    .report(&run.report(RunResult::LeaseLost, Some(why)));
                return;
            }
            (true, Transition::Done) => {
                span.in_scope(|| tracing::info!(inbox_event = "done", "inbox event done"));
                RunResult::Done
            }
            (true, Transition::RetryAfter(after)) => {
                span.in_scope(|| {
                    tracing::warn!(
                        inbox_event = "retry",
                        id = event.id,
                        attempt = event.attempt,
                        reason = ?Untrusted(why.as_deref().unwrap_or("")),
                        retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                        "inbox event failed; retry scheduled"
                    );
                });
                RunResult::Retry { after }
            }
            (true, Transition::Dead) => {
                span.in_scope(|| {
                    tracing::error!(
                        inbox_event = "dead",
                        id = event.id,
                        attempt = event.attempt,
                        reason = ?Untrusted(why.as_deref().unwrap_or("")),
                        "inbox event dead"
                    );
                });
                RunResult::Dead
            }
            (true, Transition::Release) => {
                span.in_scope(|| {
                    tracing::info!(inbox_event = "released", "inbox event released at shutdown");
                });
                RunResult::Released
            }
        };
        self.inbox.report(&run.report(result, why));
    }
}
