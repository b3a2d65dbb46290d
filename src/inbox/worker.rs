//! The workers: lease a due event, run its handler (stages 5 and 6 of the pipeline in
//! inbox mode) while a heartbeat extends the lease, then store the outcome; and a
//! housekeeper that prunes and reports the queue.

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use super::Inbox;
use super::backend::Leased;
use super::context::EventContext;
use super::types::{RunReport, RunResult, cut_error};
use crate::dispatch::{self, HandlerOutcome};
use crate::event::{CallbackEvent, Family, ParseError};
use crate::metrics::{self, InboxCount};
use crate::pipeline::Pipeline;
use crate::store::ClaimToken;
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

/// How often the housekeeper prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The running workers of an [`Inbox`]. Dropping this handle leaves them running
/// until the runtime stops; call [`shutdown`](Self::shutdown) to stop them cleanly.
pub struct Workers {
    /// `true` once no new event may be leased.
    stop: watch::Sender<bool>,
    /// `true` once running handlers must be dropped and their events released.
    abort: watch::Sender<bool>,
    tasks: JoinSet<()>,
    grace: Duration,
    concurrency: usize,
}

impl Workers {
    /// Stops leasing, waits up to the configured
    /// [`shutdown_grace`](super::InboxBuilder::shutdown_grace) for running handlers to
    /// finish (their events are then done or scheduled as usual), then drops the
    /// handlers still running and releases their events to pending.
    pub async fn shutdown(self) {
        let grace = self.grace;
        self.shutdown_within(grace).await;
    }

    /// [`shutdown`](Self::shutdown) with this grace period.
    pub async fn shutdown_within(mut self, grace: Duration) {
        let _ = self.stop.send(true);
        let finished = timeout(grace, async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await;
        if finished.is_err() {
            let _ = self.abort.send(true);
            while self.tasks.join_next().await.is_some() {}
        }
    }
}

impl fmt::Debug for Workers {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Workers")
            .field("concurrency", &self.concurrency)
            .field("grace", &self.grace)
            .field("stopping", &*self.stop.borrow())
            .finish()
    }
}

struct Worker {
    inbox: Inbox,
    pipeline: Arc<Pipeline>,
    stop: watch::Receiver<bool>,
    abort: watch::Receiver<bool>,
}

pub(crate) fn start(inbox: Inbox, pipeline: Arc<Pipeline>) -> Workers {
    let (stop, stop_rx) = watch::channel(false);
    let (abort, abort_rx) = watch::channel(false);
    let config = inbox.config().clone();
    let worker = Arc::new(Worker {
        inbox,
        pipeline,
        stop: stop_rx,
        abort: abort_rx,
    });
    // A SQLite inbox belongs to one process: whatever it left running when it died is
    // taken back at once, before the workers start.
    let (ready, ready_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(housekeeper(Arc::clone(&worker), ready));
    for _ in 0..config.concurrency {
        let worker = Arc::clone(&worker);
        let mut ready = ready_rx.clone();
        tasks.spawn(async move {
            let _ = ready.wait_for(|ready| *ready).await;
            worker.run_loop().await;
        });
    }
    Workers {
        stop,
        abort,
        tasks,
        grace: config.shutdown_grace,
        concurrency: config.concurrency,
    }
}

async fn housekeeper(worker: Arc<Worker>, ready: watch::Sender<bool>) {
    let inbox = &worker.inbox;
    let config = inbox.config();
    match inbox.backend().recover_after_restart().await {
        Ok(0) => {}
        Ok(recovered) => tracing::warn!(
            recovered,
            "inbox events left running by a previous run of this process will run again"
        ),
        Err(error) => tracing::warn!(%error, "could not take back the events left running"),
    }
    let _ = ready.send(true);
    let mut stop = worker.stop.clone();
    let mut last_prune: Option<Instant> = None;
    loop {
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            match inbox.prune().await {
                Ok(pruned) => {
                    last_prune = Some(Instant::now());
                    if pruned > 0 {
                        tracing::info!(inbox_event = "pruned", pruned, "old inbox events pruned");
                    }
                }
                Err(error) => tracing::warn!(%error, "could not prune the inbox"),
            }
        }
        match inbox.stats().await {
            Ok(stats) => {
                metrics::inbox_queue(stats.queue_depth(), stats.oldest_pending_age);
                tracing::info!(
                    inbox_event = "queue",
                    queue_depth = stats.queue_depth(),
                    running = stats.running,
                    dead = stats.dead,
                    oldest_pending_age_ms = stats
                        .oldest_pending_age
                        .map_or(0, |age| u64::try_from(age.as_millis()).unwrap_or(u64::MAX)),
                    "inbox queue"
                );
            }
            Err(error) => tracing::warn!(%error, "could not read the inbox queue"),
        }
        tokio::select! {
            () = sleep(config.housekeeping_interval) => {}
            _ = stop.wait_for(|stop| *stop) => return,
        }
    }
}

impl Worker {
    async fn run_loop(&self) {
        let config = self.inbox.config();
        let mut stop = self.stop.clone();
        while !*stop.borrow() {
            let token = ClaimToken::new_unique().to_string();
            let leased = timeout(
                config.store_timeout,
                self.inbox.backend().lease(&token, config.lease),
            )
            .await;
            match leased {
                Ok(Ok(Some(event))) => self.run_one(event, &token).await,
                Ok(Ok(None)) => {
                    tokio::select! {
                        () = self.inbox.wake().notified() => {}
                        () = sleep(config.poll_interval) => {}
                        _ = stop.wait_for(|stop| *stop) => {}
                    }
                }
                Ok(Err(error)) => {
                    tracing::warn!(%error, "inbox worker could not lease an event");
                    self.pause(&mut stop).await;
                }
                Err(_elapsed) => {
                    tracing::warn!("inbox worker: leasing an event timed out");
                    self.pause(&mut stop).await;
                }
            }
        }
    }

    /// Waits a poll interval (at least a second) after a database error.
    async fn pause(&self, stop: &mut watch::Receiver<bool>) {
        let pause = self
            .inbox
            .config()
            .poll_interval
            .max(Duration::from_secs(1));
        tokio::select! {
            () = sleep(pause) => {}
            _ = stop.wait_for(|stop| *stop) => {}
        }
    }

    async fn run_one(&self, event: Leased, token: &str) {
        let config = self.inbox.config();
        let backend = self.inbox.backend();
        let span = tracing::info_span!(
            "suno_callback_inbox",
            id = event.id,
            task_id = ?event.task_id,
            stage = ?event.stage,
            attempt = event.attempt,
        );
        let report = |result: RunResult, error: Option<String>| RunReport {
            id: event.id,
            task_id: event.task_id.clone(),
            family: event.family.clone(),
            stage: event.stage.clone(),
            outcome: event.outcome.clone(),
            attempt: event.attempt,
            result,
            error,
        };
        span.in_scope(|| tracing::info!(inbox_event = "attempt", "inbox event leased"));
        metrics::inbox(InboxCount::Attempt, &event.family);

        if event.attempt > config.max_attempts || event.age > config.max_age {
            let why = format!(
                "gave up after {} attempts over {} s",
                event.attempt.saturating_sub(1),
                event.age.as_secs()
            );
            let result = self.bury(event.id, token, &why).await;
            span.in_scope(
                || tracing::error!(inbox_event = "dead", id = event.id, attempt = event.attempt, reason = ?Untrusted(&why), "inbox event dead"),
            );
            self.inbox.report(&report(result, Some(why)));
            return;
        }
        let invocation = match rebuild(&event.family, event.body.clone()) {
            Ok(parsed) => self
                .pipeline
                .handlers
                .route_event(&parsed)
                .map(|handler| handler.bind(parsed)),
            Err(error) => {
                let why = cut_error(&format!("stored body is not a callback: {error}"));
                let result = self.bury(event.id, token, &why).await;
                span.in_scope(
                    || tracing::error!(inbox_event = "dead", id = event.id, attempt = event.attempt, reason = ?Untrusted(&why), "inbox event dead"),
                );
                self.inbox.report(&report(result, Some(why)));
                return;
            }
        };
        let Some(invocation) = invocation else {
            // No handler (and no fallback) for this event: done, as inline mode answers
            // `200 ignored`. A replay runs it once a handler exists.
            let result = self.settle_done(event.id, token, None).await;
            span.in_scope(|| {
                tracing::info!(inbox_event = "ignored", "no handler for the inbox event")
            });
            self.inbox.report(&report(result, None));
            return;
        };

        let context = EventContext::new(
            event.id,
            event.attempt,
            event.task_id.clone(),
            event.family.clone(),
            event.stage.clone(),
            backend.clone(),
        );
        let heartbeat = tokio::spawn(heartbeat(
            self.inbox.clone(),
            event.id,
            token.to_owned(),
            span.clone(),
        ));
        let mut abort = self.abort.clone();
        let run = context
            .clone()
            .scope(dispatch::run(invocation, config.handler_timeout));
        let outcome = tokio::select! {
            outcome = tracing::Instrument::instrument(run, span.clone()) => Some(outcome),
            _ = abort.wait_for(|abort| *abort) => None,
        };
        heartbeat.abort();
        let transaction = context.take_transaction().await;

        let Some(outcome) = outcome else {
            drop(transaction);
            let result = match backend.release(event.id, token).await {
                Ok(true) => RunResult::Released,
                Ok(false) => RunResult::LeaseLost,
                Err(error) => {
                    span.in_scope(|| tracing::warn!(%error, "could not release the inbox event; it is taken over when its lease ends"));
                    RunResult::LeaseLost
                }
            };
            span.in_scope(|| {
                tracing::info!(inbox_event = "released", "inbox event released at shutdown")
            });
            self.inbox
                .report(&report(result, Some("shutdown".to_owned())));
            return;
        };
        let why = match outcome {
            HandlerOutcome::Succeeded => {
                let result = self.settle_done(event.id, token, transaction).await;
                if result == RunResult::Done {
                    span.in_scope(|| tracing::info!(inbox_event = "done", "inbox event done"));
                    self.inbox.report(&report(result, None));
                } else {
                    self.inbox
                        .report(&report(result, Some("lease lost".to_owned())));
                }
                return;
            }
            HandlerOutcome::Failed(error) => cut_error(&format!("handler failed: {error}")),
            HandlerOutcome::Panicked(message) => cut_error(&format!("handler panicked: {message}")),
            HandlerOutcome::TimedOut => format!(
                "handler timed out after {} ms",
                config.handler_timeout.as_millis()
            ),
        };
        drop(transaction);
        let result = if event.attempt >= config.max_attempts || event.age >= config.max_age {
            let result = self.bury(event.id, token, &why).await;
            span.in_scope(
                || tracing::error!(inbox_event = "dead", id = event.id, attempt = event.attempt, reason = ?Untrusted(&why), "inbox event dead"),
            );
            result
        } else {
            let after = config.retry.delay(event.attempt);
            let result = match backend.retry(event.id, token, after, &why).await {
                Ok(true) => RunResult::Retry { after },
                Ok(false) => RunResult::LeaseLost,
                Err(error) => {
                    span.in_scope(|| tracing::warn!(%error, "could not schedule the retry; the event runs again when its lease ends"));
                    RunResult::LeaseLost
                }
            };
            span.in_scope(|| {
                tracing::warn!(
                    inbox_event = "retry",
                    id = event.id,
                    attempt = event.attempt,
                    reason = ?Untrusted(&why),
                    retry_in_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX),
                    "inbox event failed; retry scheduled"
                );
            });
            result
        };
        self.inbox.report(&report(result, Some(why)));
    }

    async fn settle_done(
        &self,
        id: i64,
        token: &str,
        transaction: Option<super::backend::Tx>,
    ) -> RunResult {
        match self.inbox.backend().complete(id, token, transaction).await {
            Ok(true) => RunResult::Done,
            Ok(false) => {
                tracing::warn!(
                    id,
                    "inbox lease lost before the event was marked done (its handler outlived \
                     the lease); another worker may run it again"
                );
                RunResult::LeaseLost
            }
            Err(error) => {
                tracing::warn!(
                    id,
                    %error,
                    "could not mark the inbox event done; it runs again when its lease ends"
                );
                RunResult::LeaseLost
            }
        }
    }

    async fn bury(&self, id: i64, token: &str, why: &str) -> RunResult {
        match self.inbox.backend().bury(id, token, why).await {
            Ok(true) => RunResult::Dead,
            Ok(false) => RunResult::LeaseLost,
            Err(error) => {
                tracing::warn!(id, %error, "could not dead-letter the inbox event");
                RunResult::LeaseLost
            }
        }
    }
}

/// Extends the lease every third of its length until aborted or the lease is lost.
async fn heartbeat(inbox: Inbox, id: i64, token: String, span: tracing::Span) {
    let lease = inbox.config().lease;
    loop {
        sleep(lease / 3).await;
        match timeout(lease / 3, inbox.backend().heartbeat(id, &token, lease)).await {
            Ok(Ok(true)) => {}
            Ok(Ok(false)) => {
                span.in_scope(|| tracing::warn!("inbox lease lost while the handler runs"));
                return;
            }
            Ok(Err(error)) => {
                span.in_scope(|| tracing::warn!(%error, "could not extend the inbox lease"));
            }
            Err(_elapsed) => {
                span.in_scope(|| tracing::warn!("extending the inbox lease timed out"));
            }
        }
    }
}
