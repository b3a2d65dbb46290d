//! The heartbeat: extends a run's lease while its handler runs, and says when it
//! could not, so the run stops before the lease can pass to another worker.

use std::sync::Mutex;

use tokio::time::{Instant, sleep, sleep_until, timeout_at};

use super::Worker;
use super::run::Run;

/// How a lease kept by the heartbeat ended.
#[derive(Debug)]
pub(super) enum LeaseEnd {
    /// It could not be extended in time: the run must stop before it runs out.
    Expiring,
    /// Another worker holds the event now.
    Taken,
}

/// The end of a lease as this worker knows it: a time by which the database's lease
/// has certainly not run out (measured from before the statement that set it).
#[derive(Debug)]
pub(super) struct LeaseClock {
    expires: Mutex<Instant>,
}

impl LeaseClock {
    pub(super) fn new(expires: Instant) -> Self {
        Self {
            expires: Mutex::new(expires),
        }
    }

    pub(super) fn expires(&self) -> Instant {
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

impl Worker {
    /// Extends the lease every third of its length. Returns only when the lease could
    /// not be extended in time (before a sixth of it is left) or another worker holds
    /// it; the caller then drops the run.
    pub(super) async fn keep_lease(&self, run: &Run) -> LeaseEnd {
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
                    .heartbeat(run.event.id, &run.token, lease),
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
}
