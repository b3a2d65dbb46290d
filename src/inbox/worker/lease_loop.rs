//! The lease loop: each worker leases the next due event, runs it, and waits when
//! none is due or the database does not answer.

use std::time::Duration;

use tokio::sync::watch;
use tokio::time::{Instant, sleep, timeout};

use super::heartbeat::LeaseClock;
use super::run::Run;
use super::{Worker, pause_unless_stopped};
use crate::store::ClaimToken;

impl Worker {
    /// Leases and runs events one at a time until the workers stop.
    pub(super) async fn run_loop(&self) {
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
                    // Nothing was written: that proves nothing of a database that
                    // refused writes (on PostgreSQL the failing lease's row is skipped
                    // as locked).
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
}
