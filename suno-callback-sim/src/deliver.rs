//! Delivering one copy of one callback under the sender's rules: an attempt with a
//! timeout, where anything but HTTP 200 is a failure, then retries after the
//! intervals until an attempt succeeds or none are left.

use std::error::Error as StdError;
use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Full, Limited};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use suno_callback::testing::FamilyCallback;
use tokio::sync::{Semaphore, oneshot};

use crate::plan::Plan;
use crate::report::{AttemptLine, Next, Report};

/// The most of an answer's body read (the receiver's answers are tiny).
const ANSWER_LIMIT: usize = 64 * 1024;

/// What one attempt got back.
#[derive(Debug)]
pub(crate) enum Answer {
    /// An HTTP answer, with the body's `status` field when it is JSON with one.
    Http {
        status: StatusCode,
        label: Option<String>,
    },
    /// No HTTP answer in time: a connection error or the timeout.
    Error(String),
}

impl Answer {
    /// The sender's rule: only 200 is a success.
    pub(crate) fn is_success(&self) -> bool {
        matches!(self, Self::Http { status, .. } if *status == StatusCode::OK)
    }
}

/// How a delivery ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Outcome {
    Delivered,
    GivenUp,
}

/// Which copy of a callback a delivery is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CopyNo {
    pub(crate) copy: u32,
    pub(crate) of: u32,
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

/// `1.5 s`, `600 ms`.
pub(crate) fn seconds(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.1} s", duration.as_secs_f64())
    } else if duration >= Duration::from_millis(10) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_200_is_a_success() {
        let http = |code: u16| Answer::Http {
            status: StatusCode::from_u16(code).expect("status"),
            label: None,
        };
        assert!(http(200).is_success());
        for code in [201, 204, 409, 500, 503] {
            assert!(!http(code).is_success(), "{code}");
        }
        assert!(!Answer::Error("refused".into()).is_success());
    }

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

    #[test]
    fn durations_print_short() {
        assert_eq!(seconds(Duration::from_millis(600)), "600 ms");
        assert_eq!(seconds(Duration::from_secs(900)), "900.0 s");
        assert_eq!(seconds(Duration::from_micros(1300)), "1.3 ms");
    }
}
