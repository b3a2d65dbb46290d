//! What the receiver counts, through the [`metrics`](https://docs.rs/metrics) facade.
//!
//! The crate records; it exports nothing. Install any `metrics` recorder in your
//! application (for Prometheus, `metrics-exporter-prometheus`, as the quickstart
//! example does) and these series appear; without one, each recording is a no-op.
//!
//! | name | kind | labels |
//! |---|---|---|
//! | [`REQUESTS_TOTAL`] | counter | `outcome`, `family`, `stage` |
//! | [`HANDLER_DURATION_SECONDS`] | histogram | `family`, `stage`, `result` (`succeeded`, `failed`) |
//! | [`STORE_CALL_DURATION_SECONDS`] | histogram | `operation` (`claim`, `complete`, `release`), `result` (`ok`, `error`, `cancelled`) |
//! | [`STORE_ERRORS_TOTAL`] | counter | `operation`, `kind` (`unavailable`, `claim_lost`, `capacity_exhausted`, `cancelled`) |
//! | [`INBOX_ATTEMPTS_TOTAL`] | counter | `family` |
//! | [`INBOX_RETRIES_TOTAL`] | counter | `family` |
//! | [`INBOX_DEAD_TOTAL`] | counter | `family` |
//! | [`INBOX_QUEUE_DEPTH`] | gauge | |
//! | [`INBOX_OLDEST_PENDING_AGE_SECONDS`] | gauge | |
//!
//! The inbox series (features `sqlite`, `postgres`) come from its workers: a handler
//! run started (attempt), a failed run scheduled again (retry), an event dead-lettered;
//! the housekeeper sets the queue depth (pending and running events) and the age of
//! the oldest of them. An event accepted into the inbox or refused as already there is
//! a request with outcome `accepted` or `duplicate`.
//!
//! `outcome` is the answer body's `status`: `processed`, `accepted`, `duplicate`,
//! `ignored`, `in_flight`, `rejected`, `invalid`, `failed` or `unavailable`. `family`
//! is `music`, or `unknown` for a request refused before its body was read as a
//! callback. `stage` is `text`, `first`, `complete`, `error`, `none` (no
//! `callbackType`), `other` (any other value) or `unknown` (not read). Every label
//! value comes from these closed sets: nothing from the unsigned body reaches a
//! label, so a hostile sender cannot create series. A store call is `cancelled` when
//! it was dropped unfinished: it timed out, or the request went away.
//!
//! ```
//! // After installing a recorder (for example
//! // `metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()`):
//! suno_callback::metrics::describe();
//! ```

use std::future::Future;
use std::time::{Duration, Instant};

use crate::event::Family;

/// Callbacks answered, by `outcome`, `family` and `stage`.
pub const REQUESTS_TOTAL: &str = "suno_callback_requests_total";
/// How long handlers ran, in seconds, by `family`, `stage` and `result`.
pub const HANDLER_DURATION_SECONDS: &str = "suno_callback_handler_duration_seconds";
/// How long dedup store calls took, in seconds, by `operation` and `result`.
pub const STORE_CALL_DURATION_SECONDS: &str = "suno_callback_store_call_duration_seconds";
/// Dedup store calls that failed, by `operation` and `kind`.
pub const STORE_ERRORS_TOTAL: &str = "suno_callback_store_errors_total";

/// Handler runs started by the inbox's workers, by `family`.
pub const INBOX_ATTEMPTS_TOTAL: &str = "suno_callback_inbox_attempts_total";
/// Failed inbox runs scheduled to run again, by `family`.
pub const INBOX_RETRIES_TOTAL: &str = "suno_callback_inbox_retries_total";
/// Inbox events dead-lettered, by `family`.
pub const INBOX_DEAD_TOTAL: &str = "suno_callback_inbox_dead_total";
/// Inbox events not finished yet (pending and running).
pub const INBOX_QUEUE_DEPTH: &str = "suno_callback_inbox_queue_depth";
/// How long ago the oldest unfinished inbox event was received, in seconds (0 when
/// none is).
pub const INBOX_OLDEST_PENDING_AGE_SECONDS: &str = "suno_callback_inbox_oldest_pending_age_seconds";

/// Gives the installed recorder each series' unit and description. Call it once,
/// after installing the recorder; recording works without it.
///
/// ```
/// let prometheus = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
/// let handle = prometheus.handle();
/// metrics::with_local_recorder(&prometheus, suno_callback::metrics::describe);
/// # let _ = handle;
/// ```
pub fn describe() {
    use ::metrics::{Unit, describe_counter, describe_histogram};
    describe_counter!(
        REQUESTS_TOTAL,
        Unit::Count,
        "Suno callbacks answered, by outcome (the answer's status), family and stage"
    );
    describe_histogram!(
        HANDLER_DURATION_SECONDS,
        Unit::Seconds,
        "How long callback handlers ran"
    );
    describe_histogram!(
        STORE_CALL_DURATION_SECONDS,
        Unit::Seconds,
        "How long dedup store calls took"
    );
    describe_counter!(
        STORE_ERRORS_TOTAL,
        Unit::Count,
        "Dedup store calls that failed, by kind"
    );
    describe_counter!(
        INBOX_ATTEMPTS_TOTAL,
        Unit::Count,
        "Handler runs started by the inbox's workers"
    );
    describe_counter!(
        INBOX_RETRIES_TOTAL,
        Unit::Count,
        "Failed inbox runs scheduled to run again"
    );
    describe_counter!(INBOX_DEAD_TOTAL, Unit::Count, "Inbox events dead-lettered");
    ::metrics::describe_gauge!(
        INBOX_QUEUE_DEPTH,
        Unit::Count,
        "Inbox events pending or running"
    );
    ::metrics::describe_gauge!(
        INBOX_OLDEST_PENDING_AGE_SECONDS,
        Unit::Seconds,
        "Age of the oldest pending or running inbox event"
    );
}

/// The `family` and `stage` labels of one request.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Labels {
    family: &'static str,
    stage: &'static str,
}

impl Labels {
    /// A request refused before its body was read as a callback.
    pub(crate) const UNREAD: Self = Self {
        family: "unknown",
        stage: "unknown",
    };

    /// A callback of `family` at `stage` (a `callbackType` or a voice status), mapped
    /// onto the closed set of known stages: anything else is `other`, no stage `none`.
    pub(crate) fn of(family: Family, stage: &str) -> Self {
        let stage = match stage {
            "text" => "text",
            "first" => "first",
            "complete" => "complete",
            "error" => "error",
            "wait_processing" => "wait_processing",
            "processing_validate" => "processing_validate",
            "processing_validate_fail" => "processing_validate_fail",
            "wait_validating" => "wait_validating",
            "success" => "success",
            "fail" => "fail",
            "" => "none",
            _ => "other",
        };
        Self {
            family: family.as_str(),
            stage,
        }
    }
}

/// Counts one answered request; `outcome` is the answer body's `status`.
pub(crate) fn request(outcome: &'static str, labels: Labels) {
    ::metrics::counter!(
        REQUESTS_TOTAL,
        "outcome" => outcome,
        "family" => labels.family,
        "stage" => labels.stage,
    )
    .increment(1);
}

/// What an inbox worker counts for one event.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum InboxCount {
    Attempt,
    Retry,
    Dead,
}

/// Counts one inbox attempt, retry or dead letter of an event of `family` (a stored
/// family name, mapped onto the closed set of families: anything else is `unknown`).
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn inbox(count: InboxCount, family: &str) {
    let family = Family::from_name(family).map_or("unknown", Family::as_str);
    let name = match count {
        InboxCount::Attempt => INBOX_ATTEMPTS_TOTAL,
        InboxCount::Retry => INBOX_RETRIES_TOTAL,
        InboxCount::Dead => INBOX_DEAD_TOTAL,
    };
    ::metrics::counter!(name, "family" => family).increment(1);
}

/// Sets the inbox's queue depth and the age of its oldest unfinished event.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn inbox_queue(depth: u64, oldest: Option<Duration>) {
    // A gauge is an f64; a queue deeper than 2^53 is not a concern.
    #[allow(clippy::cast_precision_loss)]
    ::metrics::gauge!(INBOX_QUEUE_DEPTH).set(depth as f64);
    ::metrics::gauge!(INBOX_OLDEST_PENDING_AGE_SECONDS)
        .set(oldest.map_or(0.0, |age| age.as_secs_f64()));
}

/// Records how long a handler ran.
pub(crate) fn handler(labels: Labels, succeeded: bool, elapsed: Duration) {
    let result = if succeeded { "succeeded" } else { "failed" };
    ::metrics::histogram!(
        HANDLER_DURATION_SECONDS,
        "family" => labels.family,
        "stage" => labels.stage,
        "result" => result,
    )
    .record(elapsed.as_secs_f64());
}

/// Runs one store call, recording its latency, and its error's `kind` (given by
/// `kind_of`) when it fails. A call dropped unfinished is recorded as `cancelled`.
pub(crate) async fn store_call<T, E>(
    operation: &'static str,
    call: impl Future<Output = Result<T, E>>,
    kind_of: fn(&E) -> &'static str,
) -> Result<T, E> {
    let mut recording = StoreCallRecording {
        operation,
        started: Instant::now(),
        finished: false,
    };
    let result = call.await;
    match &result {
        Ok(_) => recording.finish("ok", None),
        Err(error) => recording.finish("error", Some(kind_of(error))),
    }
    result
}

/// Records a store call once: when it finishes, or as `cancelled` when dropped first.
struct StoreCallRecording {
    operation: &'static str,
    started: Instant,
    finished: bool,
}

impl StoreCallRecording {
    fn finish(&mut self, result: &'static str, error_kind: Option<&'static str>) {
        self.finished = true;
        ::metrics::histogram!(
            STORE_CALL_DURATION_SECONDS,
            "operation" => self.operation,
            "result" => result,
        )
        .record(self.started.elapsed().as_secs_f64());
        if let Some(kind) = error_kind {
            ::metrics::counter!(
                STORE_ERRORS_TOTAL,
                "operation" => self.operation,
                "kind" => kind,
            )
            .increment(1);
        }
    }
}

impl Drop for StoreCallRecording {
    fn drop(&mut self) {
        if !self.finished {
            self.finish("cancelled", Some("cancelled"));
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::{Family, Labels, store_call};

    #[test]
    fn store_calls_are_timed_and_their_errors_counted_even_when_dropped() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, || {
            let ok = store_call("claim", async { Ok::<_, ()>(()) }, |_| "unavailable");
            assert_eq!(ok.now_or_never(), Some(Ok(())));
            let failed = store_call("complete", async { Err::<(), _>(()) }, |_| "claim_lost");
            assert_eq!(failed.now_or_never(), Some(Err(())));
            // Dropped unfinished, as a timeout drops it.
            let hung = store_call(
                "release",
                std::future::pending::<Result<(), ()>>(),
                |_| "unavailable",
            );
            assert_eq!(hung.now_or_never(), None);
        });
        let text = handle.render();
        for line in [
            r#"suno_callback_store_call_duration_seconds_count{operation="claim",result="ok"} 1"#,
            r#"suno_callback_store_call_duration_seconds_count{operation="complete",result="error"} 1"#,
            r#"suno_callback_store_call_duration_seconds_count{operation="release",result="cancelled"} 1"#,
            r#"suno_callback_store_errors_total{operation="complete",kind="claim_lost"} 1"#,
            r#"suno_callback_store_errors_total{operation="release",kind="cancelled"} 1"#,
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(!text.contains(r#"operation="claim",kind"#), "{text}");
    }

    #[cfg(any(feature = "sqlite", feature = "postgres"))]
    #[test]
    fn inbox_series_are_recorded_with_closed_family_labels() {
        use super::{InboxCount, inbox, inbox_queue};
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, || {
            inbox(InboxCount::Attempt, "wav");
            inbox(InboxCount::Attempt, "wav");
            inbox(InboxCount::Retry, "wav");
            // A stored name this version does not know, or hostile text, is `unknown`.
            inbox(InboxCount::Dead, "<script>");
            inbox(InboxCount::Dead, "");
            inbox_queue(3, Some(std::time::Duration::from_millis(1500)));
        });
        let text = handle.render();
        for line in [
            r#"suno_callback_inbox_attempts_total{family="wav"} 2"#,
            r#"suno_callback_inbox_retries_total{family="wav"} 1"#,
            r#"suno_callback_inbox_dead_total{family="unknown"} 2"#,
            "suno_callback_inbox_queue_depth 3",
            "suno_callback_inbox_oldest_pending_age_seconds 1.5",
        ] {
            assert!(text.contains(line), "{line} in:\n{text}");
        }
        assert!(!text.contains("script"), "{text}");
    }

    #[test]
    fn stage_labels_are_a_closed_set() {
        assert_eq!(Labels::of(Family::Music, "complete").stage, "complete");
        assert_eq!(Labels::of(Family::Music, "").stage, "none");
        assert_eq!(Labels::of(Family::Music, "<script>\u{7}").stage, "other");
        assert_eq!(Labels::of(Family::Music, "Complete").stage, "other");
        assert_eq!(
            Labels::of(Family::Voice, "wait_validating").stage,
            "wait_validating"
        );
        assert_eq!(Labels::of(Family::Wav, "").family, "wav");
        assert_eq!(Labels::UNREAD.family, "unknown");
    }
}
