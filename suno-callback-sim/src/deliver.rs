//! Delivering one copy of one callback under the sender's rules: an attempt with a
//! timeout, where anything but HTTP 200 is a failure, then retries after the
//! intervals until an attempt succeeds or none are left.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::Instant;

use bytes::Bytes;
use http::Request;
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use suno_callback::testing::FamilyCallback;
use tokio::sync::{Semaphore, oneshot};

use crate::attempt::{Answer, CopyNo, Next, seconds};
use crate::plan::Plan;
use crate::report::{AttemptLine, Report};

/// The most of an answer's body read (the receiver's answers are tiny).
const ANSWER_LIMIT: usize = 64 * 1024;

/// How a delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    GivenUp,
}

/// Sends callbacks to the plan's URL.
#[derive(Debug)]
pub(crate) struct Sender {
    client: Client<HttpConnector, Full<Bytes>>,
    in_flight: Semaphore,
    plan: Arc<Plan>,
    report: Arc<Report>,
}

impl Sender {
    pub(crate) fn new(plan: Arc<Plan>, report: Arc<Report>) -> Self {
        let mut connector = HttpConnector::new();
        connector.set_nodelay(true);
        let client = Client::builder(TokioExecutor::new()).build(connector);
        Self {
            client,
            in_flight: Semaphore::new(plan.concurrency),
            plan,
            report,
        }
    }

    /// Delivers one copy of `callback`, retrying as the sender does. `answered` is
    /// told when the first attempt has its answer (or failed), so the caller can pace
    /// what it sends next.
    pub(crate) async fn deliver(
        &self,
        callback: &FamilyCallback,
        copy: CopyNo,
        answered: oneshot::Sender<()>,
    ) -> Outcome {
        let mut answered = Some(answered);
        let intervals = &self.plan.rules.retry_intervals;
        let attempts = intervals.len() + 1;
        for attempt in 1..=attempts {
            if let Some(wait) = attempt.checked_sub(2).and_then(|n| intervals.get(n)) {
                tokio::time::sleep(*wait).await;
            }
            let started = Instant::now();
            let answer = self.attempt(callback).await;
            let next = if answer.is_success() {
                Next::Done
            } else {
                match intervals.get(attempt - 1) {
                    Some(wait) => Next::RetryIn(*wait),
                    None => Next::GiveUp,
                }
            };
            self.report.attempt(&AttemptLine {
                callback,
                copy,
                attempt,
                attempts,
                signing: self.plan.signing.label(),
                answer: &answer,
                elapsed: started.elapsed(),
                next,
            });
            if let Some(answered) = answered.take() {
                // The caller may have stopped waiting; nothing to do then.
                let _ = answered.send(());
            }
            match next {
                Next::Done => return Outcome::Delivered,
                Next::GiveUp => return Outcome::GivenUp,
                Next::RetryIn(_) => {}
            }
        }
        Outcome::GivenUp
    }

    /// One attempt: signed when it is sent, answered within the timeout.
    async fn attempt(&self, callback: &FamilyCallback) -> Answer {
        // The semaphore is never closed; without a permit the attempt just goes ahead.
        let _permit = self.in_flight.acquire().await.ok();
        let request = self.plan.signing.request(callback, &self.plan.url);
        let timeout = self.plan.rules.timeout;
        tokio::time::timeout(timeout, self.exchange(request))
            .await
            .unwrap_or_else(|_| Answer::Error(format!("no answer within {}", seconds(timeout))))
    }

    async fn exchange(&self, request: Request<Full<Bytes>>) -> Answer {
        let response = match self.client.request(request).await {
            Ok(response) => response,
            Err(error) => return Answer::Error(describe(&error)),
        };
        let status = response.status();
        let label = match Limited::new(response.into_body(), ANSWER_LIMIT)
            .collect()
            .await
        {
            Ok(body) => body_status(&body.to_bytes()),
            Err(_) => None,
        };
        Answer::Http { status, label }
    }
}

/// The `status` field of a JSON answer body, if it has one.
fn body_status(body: &[u8]) -> Option<String> {
    let json: serde_json::Value = serde_json::from_slice(body).ok()?;
    json.get("status")?.as_str().map(str::to_owned)
}

/// An error and its causes, outermost first.
fn describe(error: &(dyn StdError + 'static)) -> String {
    let mut text = error.to_string();
    let mut source = error.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_body_status_is_read_leniently() {
        assert_eq!(
            body_status(br#"{"status":"duplicate","task_id":"t"}"#).as_deref(),
            Some("duplicate")
        );
        assert_eq!(body_status(b"<html>busy</html>"), None);
        assert_eq!(body_status(br#"{"status":3}"#), None);
        assert_eq!(body_status(b""), None);
    }
}
