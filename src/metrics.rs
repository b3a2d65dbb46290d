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
//! | [`INBOX_STORE_AVAILABLE`] | gauge | |
//! | [`INBOX_STORE_ERRORS_TOTAL`] | counter | `operation` (`lease`, `heartbeat`, `settle`, `housekeeping`) |
//! | [`POLLS_TOTAL`] | counter | `family`, `result` (`delivered`, `duplicate`, `ignored`, `not_delivered`, `pending`, `request_failed`, `unmapped`, `overdue`) |
//! | [`RECOVERED_TOTAL`] | counter | `family`, `stage` |
//!
//! The inbox series (features `sqlite`, `postgres`) come from its workers: a handler
//! run started (attempt), a failed run scheduled again (retry), an event dead-lettered;
//! the housekeeper sets the queue depth (pending and running events) and the age of
//! the oldest of them. An event accepted into the inbox or refused as already there is
//! a request with outcome `accepted` or `duplicate`. The poll series (feature
//! `provider-api`) come from the reconciler.
//!
//! `outcome` is the answer body's `status`: `processed`, `accepted`, `duplicate`,
//! `ignored`, `in_flight`, `rejected`, `invalid`, `failed` or `unavailable`. `family`
//! is a family name (`music`, `wav`, ...), or `unknown` for a failure of no known family
//! or a request refused before its body was read as a callback. `stage` is `text`,
//! `first`, `complete`, `error`, a voice status, `none` (no stage), `other` (any other
//! value) or `unknown` (not read). Every label
//! value comes from these closed sets: nothing from the unsigned body reaches a
//! label, so a hostile sender cannot create series. A store call is `cancelled` when
//! it was dropped unfinished: it timed out, or the request went away.
//!
//! The last two come from the reconciler (feature `provider-api`): each poll of an
//! expected task by its `result` (`delivered`: it ran the handler; `duplicate`: a
//! callback had run it already; `overdue`: the task passed its maximum age and is no
//! longer polled), and each event a poll recovered, one that no callback had
//! delivered, by `family` and `stage`.
//!
//! ```
//! // After installing a recorder (for example
//! // `metrics_exporter_prometheus::PrometheusBuilder::new().install_recorder()`):
//! suno_callback::metrics::describe();
//! ```

use std::future::Future;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use ::metrics::{Key, Label, Metadata};

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
/// Whether the inbox's workers can write to their database: 1, or 0 while they are
/// stopped because it refuses or does not answer their writes.
pub const INBOX_STORE_AVAILABLE: &str = "suno_callback_inbox_store_available";
/// Database calls of the inbox's workers that failed or timed out, by `operation`
/// (`lease`, `heartbeat`, `settle`, `housekeeping`).
pub const INBOX_STORE_ERRORS_TOTAL: &str = "suno_callback_inbox_store_errors_total";
/// Polls of the task-details endpoint by the reconciler, by `family` and `result`.
pub const POLLS_TOTAL: &str = "suno_callback_polls_total";
/// Events a poll delivered that no callback had, by `family` and `stage`.
pub const RECOVERED_TOTAL: &str = "suno_callback_recovered_total";

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
    ::metrics::describe_gauge!(
        INBOX_STORE_AVAILABLE,
        Unit::Count,
        "Whether the inbox's workers can write to their database (1) or are stopped (0)"
    );
    describe_counter!(
        INBOX_STORE_ERRORS_TOTAL,
        Unit::Count,
        "Database calls of the inbox's workers that failed or timed out, by operation"
    );
    describe_counter!(
        POLLS_TOTAL,
        Unit::Count,
        "Polls of the task-details endpoint by the reconciler, by family and result"
    );
    describe_counter!(
        RECOVERED_TOTAL,
        Unit::Count,
        "Events recovered by polling that no callback had delivered, by family and stage"
    );
}

/// The `family` label values: every known family, then `unknown`.
const FAMILY_LABELS: [&str; Family::ALL.len() + 1] = {
    let mut labels = [Family::Unknown.as_str(); Family::ALL.len() + 1];
    let mut index = 0;
    while index < Family::ALL.len() {
        labels[index] = Family::ALL[index].as_str();
        index += 1;
    }
    labels
};

/// The `stage` label values.
const STAGE_LABELS: [&str; 13] = [
    "text",
    "first",
    "complete",
    "error",
    "wait_processing",
    "processing_validate",
    "processing_validate_fail",
    "wait_validating",
    "success",
    "fail",
    "other",
    "none",
    "unknown",
];

/// How many of [`STAGE_LABELS`] name a stage as the body writes it; after them come
/// `other`, `none` and `unknown`.
const NAMED_STAGES: usize = STAGE_LABELS.len() - 3;
/// The index in [`STAGE_LABELS`] of `other`: a stage this version does not name.
const OTHER_STAGE: usize = NAMED_STAGES;
/// The index in [`STAGE_LABELS`] of `none`: no stage.
const NO_STAGE: usize = NAMED_STAGES + 1;
/// The index in [`STAGE_LABELS`] of `unknown`: a request whose body was not read.
const UNREAD_STAGE: usize = NAMED_STAGES + 2;

/// The `outcome` label values of [`REQUESTS_TOTAL`]: the answer body's `status`.
pub(crate) const OUTCOME_LABELS: [&str; 9] = [
    "processed",
    "accepted",
    "duplicate",
    "ignored",
    "in_flight",
    "rejected",
    "invalid",
    "failed",
    "unavailable",
];

/// The `family` and `stage` labels of one request, as indices into [`FAMILY_LABELS`]
/// and [`STAGE_LABELS`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Labels {
    family: u8,
    stage: u8,
}

impl Labels {
    /// A request refused before its body was read as a callback.
    pub(crate) const UNREAD: Self = Self {
        family: Family::ALL.len() as u8,
        stage: UNREAD_STAGE as u8,
    };

    /// A callback of `family` at `stage` (a `callbackType` or a voice status), mapped
    /// onto the closed set of known stages: anything else is `other`, no stage `none`.
    pub(crate) fn of(family: Family, stage: &str) -> Self {
        let stage = match stage {
            "" => NO_STAGE,
            _ => STAGE_LABELS[..NAMED_STAGES]
                .iter()
                .position(|known| *known == stage)
                .unwrap_or(OTHER_STAGE),
        };
        let family = Family::ALL
            .iter()
            .position(|known| *known == family)
            .unwrap_or(Family::ALL.len());
        // Both are below 14: the casts cannot truncate.
        #[allow(clippy::cast_possible_truncation)]
        Self {
            family: family as u8,
            stage: stage as u8,
        }
    }

    /// The `family` label value.
    fn family(self) -> &'static str {
        FAMILY_LABELS[usize::from(self.family)]
    }

    /// The `stage` label value.
    fn stage(self) -> &'static str {
        STAGE_LABELS[usize::from(self.stage)]
    }
}

/// The keys of [`REQUESTS_TOTAL`], one per outcome, family and stage, each built on
/// first use: a request then records without allocating or hashing its key.
static REQUEST_KEYS: [OnceLock<Key>;
    OUTCOME_LABELS.len() * FAMILY_LABELS.len() * STAGE_LABELS.len()] =
    [const { OnceLock::new() }; OUTCOME_LABELS.len() * FAMILY_LABELS.len() * STAGE_LABELS.len()];

/// Counts one answered request; `outcome` is the answer body's `status`. An outcome
/// missing from [`OUTCOME_LABELS`] is still counted, with a key built for the call.
pub(crate) fn request(outcome: &'static str, labels: Labels) {
    let Some(outcome_index) = OUTCOME_LABELS.iter().position(|known| *known == outcome) else {
        debug_assert!(false, "an outcome missing from OUTCOME_LABELS: {outcome}");
        ::metrics::counter!(
            REQUESTS_TOTAL,
            "outcome" => outcome,
            "family" => labels.family(),
            "stage" => labels.stage(),
        )
        .increment(1);
        return;
    };
    let index = (outcome_index * FAMILY_LABELS.len() + usize::from(labels.family))
        * STAGE_LABELS.len()
        + usize::from(labels.stage);
    let key = REQUEST_KEYS[index].get_or_init(|| {
        let labels = [
            Label::from_static_parts("outcome", outcome),
            Label::from_static_parts("family", labels.family()),
            Label::from_static_parts("stage", labels.stage()),
        ];
        Key::from_parts(REQUESTS_TOTAL, labels.to_vec())
    });
    ::metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA)).increment(1);
}

/// The metadata the `metrics` macros give a series of this module.
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), ::metrics::Level::INFO, Some(module_path!()));

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

/// Counts a failed or timed-out database call of the inbox's workers; `operation` is
/// one of the closed set of [`INBOX_STORE_ERRORS_TOTAL`].
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn inbox_store_error(operation: &'static str) {
    ::metrics::counter!(INBOX_STORE_ERRORS_TOTAL, "operation" => operation).increment(1);
}

/// Sets whether the inbox's workers can write to their database.
#[cfg(any(feature = "sqlite", feature = "postgres"))]
pub(crate) fn inbox_store_available(available: bool) {
    ::metrics::gauge!(INBOX_STORE_AVAILABLE).set(if available { 1.0 } else { 0.0 });
}

/// Counts one poll of an expected task; `result` is one of the closed set of
/// [`POLLS_TOTAL`].
#[cfg(feature = "provider-api")]
pub(crate) fn poll(family: Family, result: &'static str) {
    ::metrics::counter!(
        POLLS_TOTAL,
        "family" => family.as_str(),
        "result" => result,
    )
    .increment(1);
}

/// Counts one event a poll delivered that no callback had.
#[cfg(feature = "provider-api")]
pub(crate) fn recovered(labels: Labels) {
    ::metrics::counter!(
        RECOVERED_TOTAL,
        "family" => labels.family(),
        "stage" => labels.stage(),
    )
    .increment(1);
}

/// Records how long a handler ran.
pub(crate) fn handler(labels: Labels, succeeded: bool, elapsed: Duration) {
    let result = if succeeded { "succeeded" } else { "failed" };
    ::metrics::histogram!(
        HANDLER_DURATION_SECONDS,
        "family" => labels.family(),
        "stage" => labels.stage(),
        "result" => result,
    )
    .record(elapsed.as_secs_f64());
}

/// The store operations [`store_call`] times.
const STORE_OPERATIONS: [&str; 3] = ["claim", "complete", "release"];

/// How a store call ended: the `result` label, by [`StoreResult`].
const STORE_RESULTS: [&str; 3] = ["ok", "error", "cancelled"];

/// How a store call ended, as an index into [`STORE_RESULTS`].
#[derive(Clone, Copy)]
enum StoreResult {
    Ok,
    Error,
    Cancelled,
}

/// The keys of [`STORE_CALL_DURATION_SECONDS`], by operation and result, each built on
/// first use.
static STORE_CALL_KEYS: [OnceLock<Key>; STORE_OPERATIONS.len() * STORE_RESULTS.len()] =
    [const { OnceLock::new() }; STORE_OPERATIONS.len() * STORE_RESULTS.len()];

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
        Ok(_) => recording.finish(StoreResult::Ok, None),
        Err(error) => recording.finish(StoreResult::Error, Some(kind_of(error))),
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
    /// Records the call as ending in `result`.
    fn finish(&mut self, result: StoreResult, error_kind: Option<&'static str>) {
        self.finished = true;
        let result = result as usize;
        let elapsed = self.started.elapsed().as_secs_f64();
        match STORE_OPERATIONS
            .iter()
            .position(|known| *known == self.operation)
        {
            Some(operation) => {
                let key =
                    STORE_CALL_KEYS[operation * STORE_RESULTS.len() + result].get_or_init(|| {
                        let labels = [
                            Label::from_static_parts("operation", STORE_OPERATIONS[operation]),
                            Label::from_static_parts("result", STORE_RESULTS[result]),
                        ];
                        Key::from_parts(STORE_CALL_DURATION_SECONDS, labels.to_vec())
                    });
                ::metrics::with_recorder(|recorder| recorder.register_histogram(key, &METADATA))
                    .record(elapsed);
            }
            None => ::metrics::histogram!(
                STORE_CALL_DURATION_SECONDS,
                "operation" => self.operation,
                "result" => STORE_RESULTS[result],
            )
            .record(elapsed),
        }
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
            self.finish(StoreResult::Cancelled, Some("cancelled"));
        }
    }
}

#[cfg(test)]
mod tests {
    use futures_util::FutureExt as _;
    use metrics_exporter_prometheus::PrometheusBuilder;

    use super::{Family, Labels, OUTCOME_LABELS, request, store_call};

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
        use super::{InboxCount, inbox, inbox_queue, inbox_store_available, inbox_store_error};
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
            inbox_store_error("lease");
            inbox_store_error("lease");
            inbox_store_available(false);
        });
        let text = handle.render();
        for line in [
            r#"suno_callback_inbox_attempts_total{family="wav"} 2"#,
            r#"suno_callback_inbox_store_errors_total{operation="lease"} 2"#,
            "suno_callback_inbox_store_available 0",
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
    fn each_request_series_is_counted_under_its_own_labels() {
        let recorder = PrometheusBuilder::new().build_recorder();
        let handle = recorder.handle();
        ::metrics::with_local_recorder(&recorder, || {
            for outcome in OUTCOME_LABELS {
                request(outcome, Labels::of(Family::Wav, "complete"));
            }
            request("duplicate", Labels::UNREAD);
            request("duplicate", Labels::UNREAD);
            request("processed", Labels::of(Family::Voice, ""));
        });
        let text = handle.render();
        let line = |outcome, family, stage, count| {
            format!(
                r#"suno_callback_requests_total{{outcome="{outcome}",family="{family}",stage="{stage}"}} {count}"#
            )
        };
        for outcome in OUTCOME_LABELS {
            let expected = line(outcome, "wav", "complete", 1);
            assert!(text.contains(&expected), "{expected} in:\n{text}");
        }
        for expected in [
            line("duplicate", "unknown", "unknown", 2),
            line("processed", "voice", "none", 1),
        ] {
            assert!(text.contains(&expected), "{expected} in:\n{text}");
        }
    }

    #[test]
    fn stage_labels_are_a_closed_set() {
        assert_eq!(Labels::of(Family::Music, "complete").stage(), "complete");
        assert_eq!(Labels::of(Family::Music, "").stage(), "none");
        // The names of the labels for what is not a stage are not stages either.
        for label in ["none", "other", "unknown"] {
            assert_eq!(Labels::of(Family::Music, label).stage(), "other", "{label}");
        }
        for family in Family::ALL {
            assert_eq!(Labels::of(family, "").family(), family.as_str());
        }
        assert_eq!(Labels::of(Family::Unknown, "").family(), "unknown");
        assert_eq!(Labels::of(Family::Music, "<script>\u{7}").stage(), "other");
        assert_eq!(Labels::of(Family::Music, "Complete").stage(), "other");
        assert_eq!(
            Labels::of(Family::Voice, "wait_validating").stage(),
            "wait_validating"
        );
        assert_eq!(Labels::of(Family::Wav, "").family(), "wav");
        assert_eq!(Labels::UNREAD.family(), "unknown");
    }
}
