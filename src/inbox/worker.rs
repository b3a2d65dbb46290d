//! The workers: lease a due event, run its handler (stages 5 and 6 of the pipeline in
//! inbox mode) while a heartbeat extends the lease, then store the outcome; and a
//! housekeeper that prunes and reports the queue.
//!
//! Every database call has a time limit. A run whose lease could not be extended in
//! time is dropped (its transaction rolled back) before the lease can run out, so no
//! other worker can take the event while it still runs.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, sleep_until, timeout, timeout_at};

use super::Inbox;
use super::backend::Tx;
use super::context::EventContext;
use super::decision::{self, Ending, Limits, Transition};
use super::error::InboxError;
use super::rows::Leased;
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

/// The longest share of the shutdown grace kept for releasing the events of the
/// handlers it drops.
const RELEASE_ALLOWANCE: Duration = Duration::from_secs(1);

/// The part of this process's lease tokens that no other process shares.
#[cfg(feature = "sqlite")]
fn process_prefix() -> String {
    let token = ClaimToken::new_unique().to_string();
    token.get(..16).unwrap_or_default().to_owned()
}

/// The running workers of an [`Inbox`]. Dropping this handle leaves them running
/// until the runtime stops; call [`shutdown`](Self::shutdown) to stop them cleanly.
pub struct Workers {
    /// `true` once no new event may be leased.
    stop: watch::Sender<bool>,
    /// Set once running handlers must be dropped and their events released, by this
    /// time.
    abort: watch::Sender<Option<Instant>>,
    tasks: JoinSet<()>,
    grace: Duration,
    concurrency: usize,
}

impl Workers {
    /// Stops leasing, waits up to the configured
    /// [`shutdown_grace`](super::InboxBuilder::shutdown_grace) for running handlers to
    /// finish (their events are then done or scheduled as usual), then drops the
    /// handlers still running and releases their events to pending. It returns within
    /// the grace whatever the database does; see
    /// [`shutdown_within`](Self::shutdown_within).
    pub async fn shutdown(self) {
        let grace = self.grace;
        self.shutdown_within(grace).await;
    }

    /// [`shutdown`](Self::shutdown) with this grace period. The handlers have the
    /// grace less a share (half of it, at most 1 s) kept for releasing the events of
    /// those it drops; whatever still waits for the database when the grace is over
    /// is dropped, and its events run again once their leases end.
    pub async fn shutdown_within(mut self, grace: Duration) {
        let deadline = Instant::now() + grace;
        let _ = self.stop.send(true);
        let handlers_until = deadline - (grace / 2).min(RELEASE_ALLOWANCE);
        if timeout_at(handlers_until, join_all(&mut self.tasks))
            .await
            .is_ok()
        {
            return;
        }
        let _ = self.abort.send(Some(deadline));
        if timeout_at(deadline, join_all(&mut self.tasks))
            .await
            .is_err()
        {
            self.tasks.shutdown().await;
        }
    }
}

async fn join_all(tasks: &mut JoinSet<()>) {
    while tasks.join_next().await.is_some() {}
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

/// Whether the workers' database takes their writes. Many workers see one outage:
/// the log line and the gauge change once per change of state.
#[derive(Debug, Default)]
struct StoreHealth {
    down: AtomicBool,
}

impl StoreHealth {
    fn failed(&self, operation: &'static str, error: &dyn fmt::Display) {
        metrics::inbox_store_error(operation);
        if self.down.swap(true, Ordering::SeqCst) {
            tracing::debug!(%error, operation, "inbox database call failed");
        } else {
            metrics::inbox_store_available(false);
            tracing::error!(
                %error,
                operation,
                "inbox workers stopped: the database does not take their writes; \
                 they try again every second"
            );
        }
    }

    fn succeeded(&self) {
        if self.down.swap(false, Ordering::SeqCst) {
            metrics::inbox_store_available(true);
            tracing::info!("inbox workers resumed: the database takes their writes again");
        }
    }
}

/// What the workers of one [`Workers`] share.
struct Worker {
    inbox: Inbox,
    pipeline: Arc<Pipeline>,
    stop: watch::Receiver<bool>,
    abort: watch::Receiver<Option<Instant>>,
    health: StoreHealth,
    /// The SQLite workers' lock, held until the last task of these workers ends.
    #[cfg(feature = "sqlite")]
    lock: std::sync::OnceLock<super::lock::WorkerLock>,
}

pub(crate) fn start(inbox: Inbox, pipeline: Arc<Pipeline>) -> Workers {
    let (stop, stop_rx) = watch::channel(false);
    let (abort, abort_rx) = watch::channel(None);
    let config = inbox.config().clone();
    let worker = Arc::new(Worker {
        inbox,
        pipeline,
        stop: stop_rx,
        abort: abort_rx,
        health: StoreHealth::default(),
        #[cfg(feature = "sqlite")]
        lock: std::sync::OnceLock::new(),
    });
    // The housekeeper takes a SQLite inbox's lock and what a dead holder left running
    // before the workers start.
    let (ready, ready_rx) = watch::channel(false);
    let mut tasks = JoinSet::new();
    tasks.spawn(housekeeper(Arc::clone(&worker), ready));
    for _ in 0..config.concurrency {
        let worker = Arc::clone(&worker);
        let mut ready = ready_rx.clone();
        let mut stop = worker.stop.clone();
        tasks.spawn(async move {
            tokio::select! {
                ready = ready.wait_for(|ready| *ready) => if ready.is_err() { return },
                _ = stop.wait_for(|stop| *stop) => return,
            }
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

/// Waits until `stop` is set or `pause` has passed; `true` if stopped.
async fn pause_unless_stopped(stop: &mut watch::Receiver<bool>, pause: Duration) -> bool {
    let stopped = tokio::select! {
        () = sleep(pause) => false,
        _ = stop.wait_for(|stop| *stop) => true,
    };
    stopped || *stop.borrow()
}

impl Worker {
    /// A SQLite inbox's workers are one process's: takes the lock (waiting while
    /// another process holds it), then puts back to pending what the previous holder,
    /// now gone, left running. `false` if stopped first.
    #[cfg(feature = "sqlite")]
    async fn take_the_inbox(&self) -> bool {
        use super::lock::{Attempt, try_lock};
        let Some(path) = self.inbox.backend().lock_path() else {
            return true;
        };
        let config = self.inbox.config();
        let mut stop = self.stop.clone();
        let prefix = process_prefix();
        let mut said = false;
        let previous = loop {
            match try_lock(path, &prefix) {
                Ok(Attempt::Held { lock, previous }) => {
                    let _ = self.lock.set(lock);
                    break previous;
                }
                Ok(Attempt::Busy) if !said => {
                    said = true;
                    tracing::warn!(
                        lock = %path.display(),
                        "another process runs this SQLite inbox's workers; this process \
                         stores callbacks, and its workers wait until that one stops"
                    );
                }
                Ok(Attempt::Busy) => {}
                Err(error) if !said => {
                    said = true;
                    tracing::error!(
                        %error,
                        lock = %path.display(),
                        "the SQLite inbox's lock file cannot be used; the workers wait"
                    );
                }
                Err(_) => {}
            }
            if pause_unless_stopped(&mut stop, Duration::from_secs(1)).await {
                return false;
            }
        };
        if said {
            tracing::info!("the SQLite inbox is this process's now; its workers start");
        }
        let Some(previous) = previous.filter(|previous| *previous != prefix) else {
            return true;
        };
        loop {
            let taken = timeout(
                config.store_timeout,
                self.inbox.backend().take_back(&previous),
            );
            match taken.await {
                Ok(Ok(0)) => return true,
                Ok(Ok(recovered)) => {
                    tracing::warn!(
                        recovered,
                        "inbox events left running by a process that stopped will run again"
                    );
                    return true;
                }
                Ok(Err(error)) => self.health.failed("housekeeping", &error),
                Err(_elapsed) => self.health.failed("housekeeping", &"timed out"),
            }
            if pause_unless_stopped(&mut stop, Duration::from_secs(1)).await {
                return false;
            }
        }
    }

    #[cfg(not(feature = "sqlite"))]
    #[allow(clippy::unused_async)]
    async fn take_the_inbox(&self) -> bool {
        true
    }
}

async fn housekeeper(worker: Arc<Worker>, ready: watch::Sender<bool>) {
    if !worker.take_the_inbox().await {
        return;
    }
    let _ = ready.send(true);
    let inbox = &worker.inbox;
    let config = inbox.config();
    let mut stop = worker.stop.clone();
    let mut last_prune: Option<Instant> = None;
    loop {
        if last_prune.is_none_or(|at| at.elapsed() >= PRUNE_EVERY) {
            match timeout(config.store_timeout, inbox.prune()).await {
                Ok(Ok(pruned)) => {
                    last_prune = Some(Instant::now());
                    if pruned > 0 {
                        tracing::info!(inbox_event = "pruned", pruned, "old inbox events pruned");
                    }
                }
                Ok(Err(error)) => tracing::warn!(%error, "could not prune the inbox"),
                Err(_elapsed) => tracing::warn!("pruning the inbox timed out"),
            }
        }
        match timeout(config.store_timeout, inbox.stats()).await {
            Ok(Ok(stats)) => {
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
            Ok(Err(error)) => tracing::warn!(%error, "could not read the inbox queue"),
            Err(_elapsed) => tracing::warn!("reading the inbox queue timed out"),
        }
        if pause_unless_stopped(&mut stop, config.housekeeping_interval).await {
            return;
        }
    }
}

/// How a lease kept by the heartbeat ended.
#[derive(Debug)]
enum LeaseEnd {
    /// It could not be extended in time: the run must stop before it runs out.
    Expiring,
    /// Another worker holds the event now.
    Taken,
}

/// The end of a lease as this worker knows it: a time by which the database's lease
/// has certainly not run out (measured from before the statement that set it).
#[derive(Debug)]
struct LeaseClock {
    expires: Mutex<Instant>,
}

impl LeaseClock {
    fn new(expires: Instant) -> Self {
        Self {
            expires: Mutex::new(expires),
        }
    }

    fn expires(&self) -> Instant {
        *self
            .expires
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn extend(&self, expires: Instant) {
        *self
            .expires
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner()) = expires;
    }
}

/// One leased event and what its run learns, for the transition and the report.
struct Run<'a> {
    event: Leased,
    token: &'a str,
    span: tracing::Span,
    lease: LeaseClock,
}

impl Run<'_> {
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
    fn limits(&self) -> Limits {
        let config = self.inbox.config();
        Limits {
            max_attempts: config.max_attempts,
            max_age: config.max_age,
            retry: config.retry,
        }
    }

    async fn run_loop(&self) {
        let config = self.inbox.config();
        let mut stop = self.stop.clone();
        while !*stop.borrow() {
            let token = ClaimToken::new_unique().to_string();
            let asked = Instant::now();
            let leased = timeout(
                config.store_timeout,
                self.inbox.backend().lease(&token, config.lease),
            )
            .await;
            match leased {
                Ok(Ok(Some(event))) => {
                    self.health.succeeded();
                    let run = Run {
                        span: tracing::info_span!(
                            "suno_callback_inbox",
                            id = event.id,
                            task_id = ?event.task_id,
                            stage = ?event.stage,
                            attempt = event.attempt,
                        ),
                        event,
                        token: &token,
                        lease: LeaseClock::new(asked + config.lease),
                    };
                    self.run_one(run).await;
                }
                Ok(Ok(None)) => {
                    self.health.succeeded();
                    tokio::select! {
                        () = self.inbox.wake().notified() => {}
                        () = sleep(config.poll_interval) => {}
                        _ = stop.wait_for(|stop| *stop) => {}
                    }
                }
                Ok(Err(error)) => {
                    self.health.failed("lease", &error);
                    self.pause(&mut stop).await;
                }
                Err(_elapsed) => {
                    self.health.failed("lease", &"timed out");
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
        pause_unless_stopped(stop, pause).await;
    }

    /// One leased event: run its handler (unless it cannot run), then store the
    /// transition its end names, and report what was stored, once.
    async fn run_one(&self, run: Run<'_>) {
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
                Ok(parsed) => match self.pipeline.handlers.route_event(&parsed) {
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
        run: &Run<'_>,
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

    /// Extends the lease every third of its length. Returns only when the lease could
    /// not be extended in time (before a sixth of it is left) or another worker holds
    /// it; the caller then drops the run.
    async fn keep_lease(&self, run: &Run<'_>) -> LeaseEnd {
        let lease = self.inbox.config().lease;
        let margin = lease / 6;
        loop {
            let expires = run.lease.expires();
            let stop_at = expires - margin;
            let extend_at = (expires - lease + lease / 3).min(stop_at);
            sleep_until(extend_at).await;
            let sent = Instant::now();
            if sent >= stop_at {
                return LeaseEnd::Expiring;
            }
            let extended = timeout_at(
                stop_at,
                self.inbox
                    .backend()
                    .heartbeat(run.event.id, run.token, lease),
            )
            .await;
            match extended {
                Ok(Ok(true)) => {
                    self.health.succeeded();
                    run.lease.extend(sent + lease);
                }
                Ok(Ok(false)) => return LeaseEnd::Taken,
                Ok(Err(error)) => {
                    self.health.failed("heartbeat", &error);
                    run.span
                        .in_scope(|| tracing::warn!(%error, "could not extend the inbox lease"));
                    // Try again soon, while time is left.
                    sleep((lease / 10).min(stop_at.saturating_duration_since(Instant::now())))
                        .await;
                }
                Err(_elapsed) => {
                    self.health.failed("heartbeat", &"timed out");
                    return LeaseEnd::Expiring;
                }
            }
        }
    }

    /// Stores `transition` under the run's lease, within the database time limit and
    /// before the lease ends (a release: before the shutdown deadline). `true` once
    /// committed.
    async fn store(
        &self,
        run: &Run<'_>,
        transition: Transition,
        why: Option<&str>,
        transaction: Option<Tx>,
    ) -> bool {
        let config = self.inbox.config();
        let backend = self.inbox.backend();
        let (id, token) = (run.event.id, run.token);
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
    fn report(&self, run: &Run<'_>, transition: Transition, stored: bool, why: Option<String>) {
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
