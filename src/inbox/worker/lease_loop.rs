//! The lease loop: leases as many due events as there are free run slots, in one
//! statement, and runs each on a task of its own (a slow handler never holds the
//! others back); waits when none is due or the database does not answer.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::{Semaphore, watch};
use tokio::task::JoinSet;
use tokio::time::{Instant, sleep, timeout};

use super::heartbeat::LeaseClock;
use super::run::Run;
use super::{Worker, pause_unless_stopped};
use crate::store::ClaimToken;

/// The most events one lease statement takes.
const MAX_LEASE: usize = 32;

impl Worker {
    /// Leases and runs events, at most `concurrency` at once, until the workers stop;
    /// then waits for the runs (which stop themselves on abort).
    pub(super) async fn run_loop(self: Arc<Self>) {
        let config = self.inbox.config();
        let slots = Arc::new(Semaphore::new(config.concurrency));
        let mut runs = JoinSet::new();
        let mut stop = self.stop.clone();
        loop {
            // One free slot, then every other slot free now.
            let first = tokio::select! {
                permit = Arc::clone(&slots).acquire_owned() => permit,
                _ = stop.wait_for(|stop| *stop) => break,
            };
            let Ok(first) = first else { break };
            let mut permits = vec![first];
            while permits.len() < MAX_LEASE {
                let Ok(permit) = Arc::clone(&slots).try_acquire_owned() else {
                    break;
                };
                permits.push(permit);
            }
            while runs.try_join_next().is_some() {}
            let token: Arc<str> = ClaimToken::new_unique().to_string().into();
            let asked = Instant::now();
            let leased = timeout(
                config.store_timeout,
                self.inbox
                    .backend()
                    .lease(&token, config.lease, permits.len()),
            )
            .await;
            match leased {
                Ok(Ok(events)) => {
                    let all_free = events.len() < permits.len();
                    if !events.is_empty() {
                        self.health.succeeded();
                    }
                    for event in events {
                        let Some(permit) = permits.pop() else { break };
                        let run = Run {
                            span: tracing::info_span!(
                                "suno_callback_inbox",
                                id = event.id,
                                task_id = ?event.task_id,
                                stage = ?event.stage,
                                attempt = event.attempt,
                            ),
                            event,
                            token: Arc::clone(&token),
                            lease: LeaseClock::new(asked + config.lease),
                        };
                        let worker = Arc::clone(&self);
                        runs.spawn(async move {
                            worker.run_one(run).await;
                            drop(permit);
                        });
                    }
                    drop(permits);
                    if all_free {
                        // Nothing more is due now: wait for a new event or the next poll.
                        tokio::select! {
                            () = self.inbox.wake().notified() => {}
                            () = sleep(config.poll_interval) => {}
                            _ = stop.wait_for(|stop| *stop) => {}
                        }
                    }
                }
                Ok(Err(error)) => {
                    drop(permits);
                    self.health.failed("lease", &error);
                    self.pause(&mut stop).await;
                }
                Err(_elapsed) => {
                    drop(permits);
                    self.health.failed("lease", &"timed out");
                    self.pause(&mut stop).await;
                }
            }
            if *stop.borrow() {
                break;
            }
        }
        while runs.join_next().await.is_some() {}
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
