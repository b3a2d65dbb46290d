//! The housekeeper: takes a SQLite inbox for this process (its lock, and what a gone
//! holder left running), then prunes old events and reports the queue.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, timeout};

use super::{Worker, pause_unless_stopped};
use crate::metrics;

/// How often the housekeeper prunes.
const PRUNE_EVERY: Duration = Duration::from_secs(3600);

/// The part of this process's lease tokens that no other process shares.
#[cfg(feature = "sqlite")]
fn process_prefix() -> String {
    let token = crate::store::ClaimToken::new_unique().to_string();
    token.get(..16).unwrap_or_default().to_owned()
}

impl Worker {
    /// A SQLite inbox's workers are one process's: takes the lock (waiting while
    /// another process holds it), then puts back to pending what the previous holder,
    /// now gone, left running. `false` if stopped first.
    #[cfg(feature = "sqlite")]
    async fn take_the_inbox(&self) -> bool {
        use crate::inbox::lock::{Attempt, try_lock};
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

pub(super) async fn housekeeper(worker: Arc<Worker>, ready: watch::Sender<bool>) {
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
            // Each pruning statement has the store timeout of its own; a shutdown
            // stops a long pruning between two statements (each its own transaction).
            let pruning = tokio::select! {
                pruning = inbox.prune() => pruning,
                _stopping = stop.wait_for(|stopping| *stopping) => return,
            };
            match pruning {
                Ok(pruned) => {
                    // A pruning that reached its bound may have left more: the next
                    // round goes on with it rather than an hour later.
                    if pruned < crate::inbox::backend::PRUNE_MAX_EVENTS {
                        last_prune = Some(Instant::now());
                    }
                    if pruned > 0 {
                        tracing::info!(inbox_event = "pruned", pruned, "old inbox events pruned");
                    }
                }
                Err(error) => tracing::warn!(%error, "could not prune the inbox"),
            }
        }
        // The queue only: counting the done events would read the whole table.
        match timeout(config.store_timeout, inbox.queue_stats()).await {
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
