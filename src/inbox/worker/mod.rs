//! The workers: lease a due event, run its handler (stages 5 and 6 of the pipeline in
//! inbox mode) while a heartbeat extends the lease, then store the outcome; and a
//! housekeeper that prunes and reports the queue. One job per module: the lease loop
//! (`lease_loop.rs`), one run (`run.rs`), the heartbeat (`heartbeat.rs`), the
//! housekeeping (`housekeeping.rs`), the decision a run's end makes (`decision.rs`)
//! and the database's health as the workers see it (`health.rs`).
//!
//! Every database call has a time limit. A run whose lease could not be extended in
//! time is dropped (its transaction rolled back) before the lease can run out, so no
//! other worker can take the event while it still runs.

mod decision;
mod health;
mod heartbeat;
mod housekeeping;
mod lease_loop;
mod run;

use std::fmt;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout_at};

use self::decision::Limits;
use self::health::StoreHealth;
use self::housekeeping::housekeeper;
use super::Inbox;
use crate::pipeline::dispatch::Handlers;

/// The longest share of the shutdown grace kept for releasing the events of the
/// handlers it drops.
const RELEASE_ALLOWANCE: Duration = Duration::from_secs(1);

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

/// What the workers of one [`Workers`] share.
pub(crate) struct Worker {
    inbox: Inbox,
    handlers: Arc<Handlers>,
    stop: watch::Receiver<bool>,
    abort: watch::Receiver<Option<Instant>>,
    health: StoreHealth,
    /// The SQLite workers' lock, held until the last task of these workers ends.
    #[cfg(feature = "sqlite")]
    lock: std::sync::OnceLock<super::lock::WorkerLock>,
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
}

pub(crate) fn start(inbox: Inbox, handlers: Arc<Handlers>) -> Workers {
    let (stop, stop_rx) = watch::channel(false);
    let (abort, abort_rx) = watch::channel(None);
    let config = inbox.config().clone();
    let worker = Arc::new(Worker {
        inbox,
        handlers,
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
    {
        let worker = Arc::clone(&worker);
        let mut ready = ready_rx;
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
pub(crate) async fn pause_unless_stopped(
    stop: &mut watch::Receiver<bool>,
    pause: Duration,
) -> bool {
    let stopped = tokio::select! {
        () = sleep(pause) => false,
        _ = stop.wait_for(|stop| *stop) => true,
    };
    stopped || *stop.borrow()
}
