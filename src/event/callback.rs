//! [`CallbackEvent`]: one callback of any family, typed.

use bytes::Bytes;

use super::build::{self, Meta};
use super::envelope::Envelope;
use super::error::ParseError;
use super::failure::FailureReason;
use super::family::{ApiRoute, Family, Outcome};
use super::jobs::JobsMeta;
use super::payload::Payload;
use super::stage::Stage;
use super::tolerant::from_slice_tolerant;
use super::track::Track;

/// One callback of any family: who it is about ([`task_id`](Self::task_id),
/// [`family`](Self::family), [`stage`](Self::stage), [`outcome`](Self::outcome)) and
/// what it carries ([`payload`](Self::payload)).
///
/// ```
/// use suno_callback::{CallbackEvent, Family, Outcome, Stage};
///
/// let body = r#"{"code":200,"msg":"ok","data":{"callbackType":"first","task_id":"t1",
///     "data":[{"id":"a","audio_url":"https://cdn.example.net/a.mp3"}]}}"#;
/// let event = CallbackEvent::from_json(body)?;
/// assert_eq!((event.family(), event.outcome()), (Family::Music, Outcome::Success));
/// assert_eq!(event.stage(), &Stage::First);
/// assert_eq!(event.tracks()[0].audio_url(), Some("https://cdn.example.net/a.mp3"));
///
/// let failure = CallbackEvent::from_json(
///     r#"{"code":531,"msg":"refunded","data":{"callbackType":"error","task_id":"t1"}}"#,
/// )?;
/// assert!(failure.is_failure());
/// assert_eq!(failure.reason(), Some(suno_callback::event::FailureReason::FailedCreditsRefunded));
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
#[derive(Clone, Debug)]
pub struct CallbackEvent {
    meta: Meta,
    payload: Payload,
}

impl CallbackEvent {
    /// Parses a callback body; its family comes from its shape. See [`ParseError`]
    /// for what is refused.
    ///
    /// # Errors
    ///
    /// A [`ParseError`] (answered `400` by the receiver) when the body is not a JSON
    /// object, nests too deep, has no task id or no integer `code`, or carries an
    /// unprintable or over-long `callbackType`, `status` or `state`.
    pub fn from_json(body: impl Into<Bytes>) -> Result<Self, ParseError> {
        let raw = body.into();
        let envelope = Envelope::parse(&raw, None)?;
        Ok(Self::build(envelope, raw))
    }

    /// Parses a callback body of a known family (the family its path names): a failure
    /// that carries only its task id is then typed too.
    ///
    /// ```
    /// use suno_callback::{CallbackEvent, Family};
    ///
    /// let body = r#"{"code":500,"msg":"MIDI generation failed","data":{"taskId":"t"}}"#;
    /// assert_eq!(CallbackEvent::from_json(body)?.family(), Family::Unknown);
    /// assert_eq!(CallbackEvent::from_json_as(Family::Midi, body)?.family(), Family::Midi);
    /// # Ok::<(), suno_callback::ParseError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// A [`ParseError`] when the body is not a callback, as for
    /// [`from_json`](Self::from_json).
    pub fn from_json_as(family: Family, body: impl Into<Bytes>) -> Result<Self, ParseError> {
        let raw = body.into();
        let envelope = Envelope::parse(&raw, Some(family))?;
        Ok(Self::build(envelope, raw))
    }

    /// The whole event of a body whose envelope was read (after verification).
    pub(crate) fn build(envelope: Envelope, raw: Bytes) -> Self {
        let (meta, payload) = build::build(envelope, raw);
        Self { meta, payload }
    }

    /// The task this callback reports on.
    pub fn task_id(&self) -> &str {
        &self.meta.task_id
    }

    /// The family, from the request's path or else from the body's shape.
    pub fn family(&self) -> Family {
        self.meta.family
    }

    /// The stage: `callbackType` for music and lyrics, the status for voice,
    /// `Stage::Other("")` for families without stages.
    pub fn stage(&self) -> &Stage {
        &self.meta.stage
    }

    /// Success or failure.
    pub fn outcome(&self) -> Outcome {
        self.meta.outcome
    }

    /// Which of the provider's APIs the task was created through, as the callback's
    /// shape tells it: [`ApiRoute::Jobs`] for a body with `data.model` and
    /// `data.state`, else [`ApiRoute::Classic`].
    ///
    /// ```
    /// use suno_callback::{ApiRoute, CallbackEvent};
    ///
    /// let classic = CallbackEvent::from_json(r#"{"code":200,"data":{"task_id":"t","audioWavUrl":"u"}}"#)?;
    /// assert_eq!(classic.api_route(), ApiRoute::Classic);
    /// let jobs = CallbackEvent::from_json(
    ///     r#"{"code":200,"data":{"taskId":"t","model":"ai-music-api/generate","state":"success"}}"#,
    /// )?;
    /// assert_eq!(jobs.api_route(), ApiRoute::Jobs);
    /// # Ok::<(), suno_callback::ParseError>(())
    /// ```
    pub fn api_route(&self) -> ApiRoute {
        self.meta.route
    }

    /// The jobs route's metadata (model, state, credits, times, failure code and
    /// message, the raw `resultJson` and `param`); `None` for a callback of the classic
    /// route. See [`JobsMeta`].
    pub fn jobs(&self) -> Option<&JobsMeta> {
        self.meta.jobs.as_deref()
    }

    /// Whether the callback reports a failure.
    pub fn is_failure(&self) -> bool {
        self.meta.outcome == Outcome::Failure
    }

    /// The callback's `code`: `200` on success.
    pub fn code(&self) -> i64 {
        self.meta.code
    }

    /// The documented reason of a failure's `code`; `None` on success. On the jobs
    /// route, the reason of `failCode` when it is a number, else of `code`.
    pub fn reason(&self) -> Option<FailureReason> {
        let fail_code = self
            .jobs()
            .and_then(JobsMeta::fail_code)
            .and_then(|code| code.trim().parse().ok());
        self.is_failure()
            .then(|| FailureReason::from_code(fail_code.unwrap_or(self.meta.code)))
    }

    /// The callback's `msg`, a human-readable status.
    pub fn msg(&self) -> Option<&str> {
        self.meta.msg.as_deref()
    }

    /// What the callback carries, typed by family.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The music tracks (`data.data`, or on the jobs route those `resultJson` holds);
    /// empty for other families and when the list is `[]`, `null` or absent.
    pub fn tracks(&self) -> &[Track] {
        match &self.payload {
            Payload::Music(music) => music.tracks(),
            _ => &[],
        }
    }

    /// The `data.error` text some music failures send instead of a track list (on the
    /// jobs route, `resultJson`'s `error` or else `failMsg`).
    pub fn error_detail(&self) -> Option<&str> {
        match &self.payload {
            Payload::Music(music) => music.error_detail(),
            _ => None,
        }
    }

    /// The body exactly as received.
    pub fn raw_body(&self) -> &Bytes {
        &self.meta.raw
    }

    /// The body as a JSON value, for fields this crate does not model. It is parsed
    /// again on each call; keep the value if you need it more than once. Every body
    /// that parses into an event gives a value here (deeper bodies are refused).
    pub fn raw_json(&self) -> serde_json::Value {
        from_slice_tolerant(&self.meta.raw).unwrap_or(serde_json::Value::Null)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::envelope::Envelope;
    use crate::event::family::{Family, Outcome};
    use crate::event::payload::MusicPayload;
    use crate::event::stage::Stage;
    use crate::event::tolerant::{replace_lone_surrogates, replace_numbers_out_of_range};

    #[test]
    fn refuses_what_the_pipeline_cannot_work_without() {
        let cases = [
            ("not json", "is_json"),
            ("[1, 2]", "is_json"),
            (r#"{"code": 200, "data": {"callbackType": "text"}}"#, "task"),
            (
                r#"{"data": {"task_id": "t", "callbackType": "text"}}"#,
                "code",
            ),
            (r#"{"code": "abc", "data": {"task_id": "t"}}"#, "code"),
        ];
        for (body, expected) in cases {
            let error = CallbackEvent::from_json(body).expect_err(body);
            let matched = match expected {
                "is_json" => error.is_json(),
                "task" => error.is_missing_task_id(),
                _ => error.is_missing_code(),
            };
            assert!(matched, "{body}: {error}");
        }
    }

    #[test]
    fn bytes_that_are_not_utf8_are_replaced_in_the_event_and_its_json() {
        // Found by the `envelope` fuzz target: the envelope skipped the bad string
        // unread, and `raw_json()` was `null` for a body the typed parse accepted.
        let body = b"{\"code\":500,\"msg\":\"Internal Err\xff\xffor\",\"data\":{\"audioWavUrl\":null,\"task_id\":\"t\"}}";
        let event = CallbackEvent::from_json(&body[..]).expect("parses");
        assert_eq!(event.msg(), Some("Internal Err\u{fffd}\u{fffd}or"));
        assert_eq!(event.raw_json()["msg"], "Internal Err\u{fffd}\u{fffd}or");
        assert_eq!(
            &event.raw_body()[..],
            &body[..],
            "the raw body stays as received"
        );
    }

    #[test]
    fn lone_surrogates_are_replaced_and_pairs_kept() {
        let body =
            br#"{"code":200,"msg":"cut \ud83c","data":{"callbackType":"complete","task_id":"t",
            "data":[{"title":"pair \ud83c\udfb5 low \udfb5 escaped \\ud83c"}]}}"#;
        let event = CallbackEvent::from_json(&body[..]).expect("parses");
        assert_eq!(event.stage(), &Stage::Complete);
        assert_eq!(event.msg(), Some("cut \u{fffd}"));
        assert_eq!(
            event.tracks()[0].title(),
            Some("pair \u{1f3b5} low \u{fffd} escaped \\ud83c")
        );
        assert_eq!(event.raw_json()["msg"], "cut \u{fffd}");
        assert_eq!(
            replace_lone_surrogates(br#"{"a":"\ud83c\udfb5 \\ud800"}"#),
            None
        );
    }

    #[test]
    fn code_decides_success_before_callback_type() {
        let event = CallbackEvent::from_json(
            r#"{"code": 400, "data": {"callbackType": "complete", "task_id": "t", "data": [{"id": "a"}]}}"#,
        )
        .expect("parses");
        assert_eq!(event.outcome(), Outcome::Failure);
        assert_eq!(event.family(), Family::Music);
        assert_eq!(event.stage(), &Stage::Complete);
        let event = CallbackEvent::from_json(
            r#"{"code": "200", "data": {"callbackType": "error", "task_id": "t"}}"#,
        )
        .expect("parses");
        assert!(event.is_failure(), "callbackType error is a failure");
    }

    /// `MusicPayload::scan` against serde, on `data` of `body`: when the scan decides,
    /// it decides as serde does. Returns whether it decided.
    fn scan_agrees_with_serde(body: &[u8]) -> bool {
        let Ok(envelope) = Envelope::parse(body, Some(Family::Music)) else {
            return false;
        };
        let Some(data) = envelope.parts.data.and_then(|range| body.get(range)) else {
            return false;
        };
        let Ok(text) = std::str::from_utf8(data) else {
            return false;
        };
        let Some(scanned) = MusicPayload::scan(text) else {
            return false;
        };
        let serde = from_slice_tolerant::<MusicPayload>(data);
        assert_eq!(
            serde.as_ref().ok(),
            Some(&scanned),
            "{}",
            String::from_utf8_lossy(body)
        );
        true
    }

    #[test]
    fn the_scanned_music_payload_is_the_one_serde_reads() {
        let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/music");
        let mut paths: Vec<_> = std::fs::read_dir(fixtures)
            .expect("fixtures")
            .map(|entry| entry.expect("entry").path())
            .collect();
        paths.sort();
        for path in &paths {
            let body = std::fs::read(path).expect("fixture");
            let decided = scan_agrees_with_serde(&body);
            let has_data = Envelope::parse(&body, Some(Family::Music))
                .is_ok_and(|envelope| envelope.parts.data.is_some());
            assert_eq!(decided, has_data, "the scan reads {}", path.display());
        }
        // (`data`, whether the scan decides)
        let odd = [
            (
                r#"{"data":[{"id":7,"title":-1.5e3,"tags":true,"prompt":null,"model_name":{},
                "image_url":[1],"audio_url":"","createTime":"1786343609818","duration":"2.5"},
                3,null,{"title":"caf\u00e9 \"q\" \ud83c\udfb5","createTime":17.9},{}],
                "error":42}"#,
                true,
            ),
            (r#"{"error":"e","data":{"id":"not a list"}}"#, true),
            (
                r#"{"data":[{"createTime":1E863436098,"duration":-1e400}]}"#,
                false,
            ),
            (r#"{"data":[{"id":"a","id":"b"}]}"#, false),
            (r#"{"data":[{"\u0069d":"a"}]}"#, false),
            (r#"{"data":[{"title":"lone \ud83c"}]}"#, false),
            (r#"{"data":[],"data":[]}"#, false),
        ];
        for (data, decides) in odd {
            let body = format!(r#"{{"code":200,"task_id":"t","data":{data}}}"#);
            assert_eq!(scan_agrees_with_serde(body.as_bytes()), decides, "{data}");
        }
        // Every byte of a callback replaced by each byte that matters to JSON.
        let body = include_bytes!("../../tests/fixtures/music/add_instrumental_complete.json");
        let mut changed = body.to_vec();
        for at in 0..body.len() {
            for byte in *b"{}[]\",:\\ 0-.etn" {
                changed[at] = byte;
                let _ = scan_agrees_with_serde(&changed);
            }
            changed[at] = body[at];
        }
    }

    #[test]
    fn a_repeated_msg_is_delivered_untyped_as_serde_would_read_it() {
        let body = r#"{"code":200,"msg":"a","msg":"b","data":{"task_id":"t","callbackType":"complete",
            "data":[{"id":"a"}]}}"#;
        let event = CallbackEvent::from_json(body).expect("the envelope is fine");
        assert_eq!((event.msg(), event.tracks().len()), (None, 0));
        let body = r#"{"data":{"task_id":"t","callbackType":"complete","data":[{"id":"a"}]},
            "msg":"last","code":200}"#;
        let event = CallbackEvent::from_json(body).expect("members in any order");
        assert_eq!((event.msg(), event.tracks().len()), (Some("last"), 1));
    }

    #[test]
    fn an_unreadable_payload_is_delivered_untyped() {
        let body = r#"{"code":200,"msg":"ok","data":{"task_id":"t","callbackType":"complete",
            "data":[{"id":"a","id":"b"}]}}"#;
        let event = CallbackEvent::from_json(body).expect("the envelope is fine");
        assert_eq!(event.family(), Family::Music);
        assert!(event.tracks().is_empty());
        assert_eq!(event.raw_json()["msg"], "ok");
    }

    /// Found by fuzzing: a number beyond f64's range, in a field the typed parse skips,
    /// made `raw_json()` `null` for a body that was delivered.
    #[test]
    fn a_number_beyond_f64_still_gives_a_raw_value() {
        let body = r#"{"code":200,"msg":"ok","data":{"task_id":"t","callbackType":"complete",
            "data":[{"id":"a","createTime":1E863436098,"duration":-1e400,"title":"1e999"}]}}"#;
        let event = CallbackEvent::from_json(body).expect("delivered");
        let raw = event.raw_json();
        assert_eq!(raw["msg"], "ok", "{raw}");
        let track = &raw["data"]["data"][0];
        assert!(track["createTime"].is_null(), "{raw}");
        assert!(track["duration"].is_null(), "{raw}");
        assert_eq!(track["title"], "1e999", "a string is left alone");
    }

    /// serde_json (built without `float_roundtrip`) overflows on some numbers that
    /// Rust's `f64` parse rounds to `f64::MAX`, such as `1.7976931348623158e308` (the
    /// usual text of `f64::MAX`). The scan accepts the body; the repair must replace
    /// such a number as serde_json reads it, or the tolerant retry fails again and
    /// `raw_json()` is `null` for a delivered event (the `envelope` fuzz target's
    /// assertion).
    #[test]
    fn a_number_serde_overflows_but_rust_rounds_to_max_still_gives_a_raw_value() {
        assert!(serde_json::from_str::<serde_json::Value>("1.7976931348623158e308").is_err());
        assert!(
            "1.7976931348623158e308"
                .parse::<f64>()
                .is_ok_and(f64::is_finite)
        );
        let body = r#"{"code":200,"msg":"ok","data":{"task_id":"t"},"x":1.7976931348623158e308}"#;
        let event = CallbackEvent::from_json(body).expect("delivered");
        assert!(!event.raw_json().is_null(), "raw_json() is null");
    }

    /// Such a number in one track's `duration` makes the scan leave the payload to
    /// serde, which refuses it: unless the repair replaces it, every track of the
    /// callback is lost (`1E400` in its place is read as `None` and the tracks kept).
    #[test]
    fn a_number_serde_cannot_read_does_not_cost_the_tracks() {
        for number in ["1E400", "1.7976931348623158e308"] {
            let body = format!(
                r#"{{"code":200,"data":{{"task_id":"t","callbackType":"complete",
                "data":[{{"id":"a","duration":{number}}},{{"id":"b"}}]}}}}"#
            );
            let event = CallbackEvent::from_json(body).expect("delivered");
            assert_eq!(event.tracks().len(), 2, "{number}: the tracks are lost");
        }
    }

    /// The other direction: serde reads `1.79769313486231585e308` as `f64::MAX`,
    /// Rust's parse as infinity. When the tolerant retry runs for another reason (a
    /// lone surrogate elsewhere in `data`), a number serde reads must be kept, or the
    /// same `duration` reads `Some` or `None` depending on an unrelated title.
    #[test]
    fn a_number_serde_reads_is_not_replaced_by_the_repair() {
        let number = "1.79769313486231585e308";
        let expected = serde_json::from_str::<f64>(number).ok();
        assert!(expected.is_some());
        for title in ["plain", r"lone \ud83c"] {
            let body = format!(
                r#"{{"code":200,"data":{{"task_id":"t","callbackType":"complete",
                "data":[{{"id":"a","title":"{title}","duration":{number}}}]}}}}"#
            );
            let event = CallbackEvent::from_json(body).expect("delivered");
            assert_eq!(event.tracks()[0].duration_seconds(), expected, "{title}");
        }
    }

    #[test]
    fn only_numbers_beyond_range_are_replaced() {
        assert_eq!(
            replace_numbers_out_of_range(br#"{"a":1e308,"b":-2.5E-400}"#),
            None
        );
        assert_eq!(
            replace_numbers_out_of_range(br#"{"a":[1e309,2],"b":"1e309\"","c":-1E999}"#).as_deref(),
            Some(&br#"{"a":[null,2],"b":"1e309\"","c":null}"#[..])
        );
    }
}
