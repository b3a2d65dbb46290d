//! What the receiver answers, as DESIGN's table of answers gives it. The sender only
//! looks at the status code; the JSON body (`{"status": ...}`) is for people and tests.

use std::borrow::Cow;

use bytes::Bytes;
use http::header::{CONTENT_TYPE, HeaderValue, RETRY_AFTER};
use http::{Response, StatusCode};
#[cfg(test)]
use serde::Serialize;

use crate::store::DedupKey;
use crate::untrusted::Untrusted;
use crate::verify::VerifyError;

/// `Retry-After` on a `409`: the same callback is still being processed.
pub(crate) const IN_FLIGHT_RETRY_AFTER_SECONDS: u32 = 5;
/// `Retry-After` on a `503`: the dedup store is unavailable.
pub(crate) const UNAVAILABLE_RETRY_AFTER_SECONDS: u32 = 30;

/// One answer, before it becomes a response.
#[derive(Debug)]
pub(crate) enum Answer {
    /// 200: the handler ran and succeeded.
    Processed(DedupKey),
    /// 200: stored in the inbox; a worker runs the handler.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        expect(dead_code, reason = "only inbox mode answers this")
    )]
    Accepted(DedupKey),
    /// 200: already processed (or already stored in the inbox).
    Duplicate(DedupKey),
    /// 200: no handler for this event.
    Ignored(DedupKey),
    /// 409: still in flight after the wait.
    InFlight(DedupKey),
    /// 401: verification refused the request.
    Rejected(VerifyError),
    /// 400, 405, 413, 415: not a callback we can read.
    Invalid(StatusCode, Cow<'static, str>),
    /// 500: the handler failed, panicked or timed out; the claim was released.
    Failed(DedupKey, &'static str),
    /// 503: the dedup store is unavailable.
    Unavailable(DedupKey),
    /// 503: the inbox could not store the event; nothing was stored.
    #[cfg_attr(
        not(any(feature = "sqlite", feature = "postgres")),
        expect(dead_code, reason = "only inbox mode answers this")
    )]
    InboxUnavailable(DedupKey),
    /// 503: confirm mode (or `SignatureReuse::Confirm` on a reused signature), and the
    /// provider does not confirm an outcome yet, or cannot be asked.
    Unconfirmed(DedupKey),
}

/// The JSON body's fields, as `serde_json` would write them; [`Answer::json_body`]
/// writes the same document by hand, and a test holds the two together. Every text in
/// it is cut short and escaped (see `untrusted`): the task id and `callbackType` come
/// from an unsigned body.
#[cfg(test)]
#[derive(Serialize)]
struct AnswerJson<'a> {
    status: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    task_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    family: Option<&'static str>,
    /// At most 64 printable ASCII bytes: the envelope refuses anything else.
    #[serde(skip_serializing_if = "Option::is_none")]
    stage: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    outcome: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reason: Option<Cow<'a, str>>,
}

impl Answer {
    /// A refusal of what cannot be a callback; a reason that quotes the request is
    /// cut short and escaped here.
    pub(crate) fn invalid(status: StatusCode, reason: impl Into<Cow<'static, str>>) -> Self {
        let reason = match reason.into() {
            Cow::Borrowed(reason) => Cow::Borrowed(reason),
            Cow::Owned(reason) => Cow::Owned(Untrusted(&reason).to_bounded()),
        };
        Self::Invalid(status, reason)
    }

    pub(crate) fn status_code(&self) -> StatusCode {
        match self {
            Self::Processed(_) | Self::Accepted(_) | Self::Duplicate(_) | Self::Ignored(_) => {
                StatusCode::OK
            }
            Self::InFlight(_) => StatusCode::CONFLICT,
            Self::Rejected(_) => StatusCode::UNAUTHORIZED,
            Self::Invalid(status, _) => *status,
            Self::Failed(..) => StatusCode::INTERNAL_SERVER_ERROR,
            Self::Unavailable(_) | Self::InboxUnavailable(_) | Self::Unconfirmed(_) => {
                StatusCode::SERVICE_UNAVAILABLE
            }
        }
    }

    /// The body's `status`, also the `outcome` recorded on the tracing span.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Processed(_) => "processed",
            Self::Accepted(_) => "accepted",
            Self::Duplicate(_) => "duplicate",
            Self::Ignored(_) => "ignored",
            Self::InFlight(_) => "in_flight",
            Self::Rejected(_) => "rejected",
            Self::Invalid(..) => "invalid",
            Self::Failed(..) => "failed",
            Self::Unavailable(_) | Self::InboxUnavailable(_) | Self::Unconfirmed(_) => {
                "unavailable"
            }
        }
    }

    pub(crate) fn key(&self) -> Option<&DedupKey> {
        match self {
            Self::Processed(key)
            | Self::Accepted(key)
            | Self::Duplicate(key)
            | Self::Ignored(key)
            | Self::InFlight(key)
            | Self::Failed(key, _)
            | Self::Unavailable(key)
            | Self::InboxUnavailable(key)
            | Self::Unconfirmed(key) => Some(key),
            Self::Rejected(_) | Self::Invalid(..) => None,
        }
    }

    fn reason(&self) -> Option<Cow<'_, str>> {
        match self {
            Self::Rejected(error) => Some(Cow::Owned(Untrusted(&error.to_string()).to_bounded())),
            // Cut short and escaped when made, in `Answer::invalid`.
            Self::Invalid(_, reason) => Some(Cow::Borrowed(reason)),
            Self::Failed(_, reason) => Some(Cow::Borrowed(reason)),
            Self::InFlight(_) => Some(Cow::Borrowed("the same callback is being processed")),
            Self::Unavailable(_) => Some(Cow::Borrowed("dedup store unavailable")),
            Self::InboxUnavailable(_) => Some(Cow::Borrowed("inbox unavailable")),
            Self::Unconfirmed(_) => Some(Cow::Borrowed(
                "the provider does not confirm this outcome yet",
            )),
            Self::Processed(_) | Self::Accepted(_) | Self::Duplicate(_) | Self::Ignored(_) => None,
        }
    }

    fn retry_after(&self) -> Option<u32> {
        match self {
            Self::InFlight(_) => Some(IN_FLIGHT_RETRY_AFTER_SECONDS),
            Self::Unavailable(_) | Self::InboxUnavailable(_) | Self::Unconfirmed(_) => {
                Some(UNAVAILABLE_RETRY_AFTER_SECONDS)
            }
            _ => None,
        }
    }

    /// The response with its JSON body as bytes; each mounting wraps the bytes in its
    /// own body type.
    pub(crate) fn render(self) -> Response<Bytes> {
        let mut response = Response::new(self.json_body());
        *response.status_mut() = self.status_code();
        let headers = response.headers_mut();
        headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
        if let Some(seconds) = self.retry_after() {
            headers.insert(RETRY_AFTER, HeaderValue::from(seconds));
        }
        if self.status_code() == StatusCode::METHOD_NOT_ALLOWED {
            headers.insert(http::header::ALLOW, HeaderValue::from_static("POST"));
        }
        response
    }

    /// The JSON body, written field by field into one buffer of the right size: the
    /// same document `serde_json` would make of [`AnswerJson`], at a fraction of the
    /// cost (this runs once per request).
    fn json_body(&self) -> Bytes {
        let key = self.key();
        let reason = self.reason();
        let task_id = key.map(|key| Untrusted(key.task_id()).bounded());
        let fields = [
            ("task_id", task_id.as_deref()),
            ("family", key.map(|key| key.family().as_str())),
            ("stage", key.map(DedupKey::stage)),
            ("outcome", key.map(|key| key.outcome().as_str())),
            ("reason", reason.as_deref()),
        ];
        // Room for the fields as they are, plus some escaping; the buffer grows if an
        // attacker's text needs more.
        let capacity = 48
            + fields
                .iter()
                .filter_map(|(name, value)| Some(name.len() + (*value)?.len()))
                .sum::<usize>();
        let mut body = Vec::with_capacity(capacity);
        body.extend_from_slice(b"{\"status\":\"");
        body.extend_from_slice(self.label().as_bytes());
        body.push(b'"');
        for (name, value) in fields {
            if let Some(value) = value {
                body.extend_from_slice(b",\"");
                body.extend_from_slice(name.as_bytes());
                body.extend_from_slice(b"\":");
                // Writing a string into a Vec cannot fail.
                let _ = serde_json::to_writer(&mut body, value);
            }
        }
        body.push(b'}');
        Bytes::from(body)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Family, Outcome};

    /// What `serde_json` makes of the answer: the reference the fast body must match.
    fn reference(answer: &Answer) -> Vec<u8> {
        let key = answer.key();
        let json = AnswerJson {
            status: answer.label(),
            task_id: key.map(|key| Untrusted(key.task_id()).to_bounded()),
            family: key.map(|key| key.family().as_str()),
            stage: key.map(DedupKey::stage),
            outcome: key.map(|key| key.outcome().as_str()),
            reason: answer.reason(),
        };
        serde_json::to_vec(&json).expect("strings serialize")
    }

    #[test]
    fn every_answer_is_an_outcome_the_requests_counter_knows() {
        let key = || DedupKey::new("t", Family::Music, "complete", Outcome::Success);
        #[cfg_attr(not(any(feature = "sqlite", feature = "postgres")), allow(unused_mut))]
        let mut answers = vec![
            Answer::Processed(key()),
            Answer::Duplicate(key()),
            Answer::Ignored(key()),
            Answer::InFlight(key()),
            Answer::Rejected(VerifyError::custom("no")),
            Answer::invalid(StatusCode::BAD_REQUEST, "no"),
            Answer::Failed(key(), "handler failed"),
            Answer::Unavailable(key()),
            Answer::Unconfirmed(key()),
        ];
        #[cfg(any(feature = "sqlite", feature = "postgres"))]
        answers.extend([Answer::Accepted(key()), Answer::InboxUnavailable(key())]);
        for answer in &answers {
            // Naming every variant: a new one does not compile until it is listed above.
            match answer {
                Answer::Processed(_)
                | Answer::Accepted(_)
                | Answer::Duplicate(_)
                | Answer::Ignored(_)
                | Answer::InFlight(_)
                | Answer::Rejected(_)
                | Answer::Invalid(..)
                | Answer::Failed(..)
                | Answer::Unavailable(_)
                | Answer::InboxUnavailable(_)
                | Answer::Unconfirmed(_) => {}
            }
            assert!(
                crate::metrics::OUTCOME_LABELS.contains(&answer.label()),
                "{answer:?}"
            );
        }
    }

    #[test]
    fn the_body_is_the_json_serde_would_write() {
        let hostile = "quote\" backslash\\ newline\n nul\u{0} emoji\u{1F3B5} \u{7f}";
        let answers = [
            Answer::Processed(DedupKey::new(
                "task-1",
                Family::Music,
                "complete",
                Outcome::Success,
            )),
            Answer::Duplicate(DedupKey::new(
                hostile,
                Family::Voice,
                hostile,
                Outcome::Failure,
            )),
            Answer::Ignored(DedupKey::new("", Family::Wav, "", Outcome::Success)),
            Answer::InFlight(DedupKey::new(
                "task-2",
                Family::Music,
                "first",
                Outcome::Success,
            )),
            Answer::Rejected(VerifyError::custom(hostile)),
            Answer::invalid(StatusCode::BAD_REQUEST, hostile.to_owned()),
            Answer::invalid(StatusCode::METHOD_NOT_ALLOWED, "method not allowed"),
            Answer::Failed(
                DedupKey::new("task-3", Family::Lyrics, "text", Outcome::Success),
                "handler failed",
            ),
            Answer::Unavailable(DedupKey::new(
                "task-4",
                Family::Midi,
                "error",
                Outcome::Failure,
            )),
        ];
        for answer in answers {
            let body = answer.json_body();
            assert_eq!(
                String::from_utf8_lossy(&body),
                String::from_utf8_lossy(&reference(&answer)),
                "{answer:?}"
            );
        }
    }
}
