//! Building the typed event from a verified body, and why a body is refused.

use std::fmt;

use bytes::Bytes;
use serde::de::DeserializeOwned;

use super::envelope::{Envelope, Parts, decode_msg};
use super::family::ApiRoute;
use super::family::Family;
use super::payload::{MusicPayload, Payload};
use super::{CallbackEvent, Meta, Stage};

/// Why a body is not a callback (answered `400`).
///
/// ```
/// use suno_callback::CallbackEvent;
///
/// let error = CallbackEvent::from_json(r#"{"code":200,"data":{}}"#).unwrap_err();
/// assert!(error.is_missing_task_id());
/// ```
#[derive(Debug)]
pub struct ParseError {
    kind: ParseErrorKind,
}

#[derive(Debug)]
pub(crate) enum ParseErrorKind {
    NotAnObject,
    Json(serde_json::Error),
    TooDeep,
    MissingTaskId,
    MissingCode,
    BadCallbackType,
    BadStatus,
}

impl From<ParseErrorKind> for ParseError {
    fn from(kind: ParseErrorKind) -> Self {
        Self { kind }
    }
}

impl ParseError {
    /// The body is not a JSON object.
    pub fn is_json(&self) -> bool {
        matches!(
            self.kind,
            ParseErrorKind::Json(_) | ParseErrorKind::NotAnObject
        )
    }

    /// Arrays and objects nest deeper than a JSON value can be built (127 levels).
    pub fn is_too_deep(&self) -> bool {
        matches!(self.kind, ParseErrorKind::TooDeep)
    }

    /// No task id at `data.task_id`, `data.taskId`, `task_id` or `taskId`.
    pub fn is_missing_task_id(&self) -> bool {
        matches!(self.kind, ParseErrorKind::MissingTaskId)
    }

    /// No integer `code`.
    pub fn is_missing_code(&self) -> bool {
        matches!(self.kind, ParseErrorKind::MissingCode)
    }

    /// A `callbackType` (or a voice `status`) longer than 64 bytes or with a
    /// character outside printable ASCII: no callback sends one, and it would name a
    /// dedup key.
    pub fn is_bad_callback_type(&self) -> bool {
        matches!(
            self.kind,
            ParseErrorKind::BadCallbackType | ParseErrorKind::BadStatus
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ParseErrorKind::NotAnObject => f.write_str("body is not a JSON object"),
            ParseErrorKind::Json(error) => write!(f, "body is not a JSON object: {error}"),
            ParseErrorKind::TooDeep => f.write_str("body nests too deep"),
            ParseErrorKind::MissingTaskId => f.write_str("body has no task id"),
            ParseErrorKind::MissingCode => f.write_str("body has no integer `code`"),
            ParseErrorKind::BadCallbackType => {
                f.write_str("`callbackType` is longer than 64 bytes or not printable")
            }
            ParseErrorKind::BadStatus => {
                f.write_str("`status` is longer than 64 bytes or not printable")
            }
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ParseErrorKind::Json(error) => Some(error),
            _ => None,
        }
    }
}

/// The body's `data` as `P`, parsed from where the envelope found it; the default
/// payload when it is absent or not an object, or when serde cannot read it (a
/// duplicated field): the event is still delivered.
fn read<P: DeserializeOwned + Default>(raw: &[u8], parts: &Parts) -> P {
    if parts.repeated {
        tracing::debug!("callback payload unreadable (a repeated `msg`); delivered untyped");
        return P::default();
    }
    let Some(data) = data_of(raw, parts) else {
        return P::default();
    };
    // Checked as UTF-8 once, the text is parsed without checking each string again.
    let parsed = match std::str::from_utf8(data) {
        Ok(text) => serde_json::from_str::<P>(text).or_else(|_| from_slice_tolerant(data)),
        Err(_) => from_slice_tolerant(data),
    };
    match parsed {
        Ok(payload) => payload,
        Err(error) => {
            tracing::debug!(
                error = ?crate::untrusted::Untrusted(&error.to_string()),
                "callback payload unreadable; delivered untyped"
            );
            P::default()
        }
    }
}

/// The music payload: read with the scanner when `data` is UTF-8 and the scan can
/// decide (the common case), else as every other payload.
fn read_music(raw: &[u8], parts: &Parts) -> MusicPayload {
    let scanned = data_of(raw, parts)
        .filter(|_| !parts.repeated)
        .and_then(|data| std::str::from_utf8(data).ok())
        .and_then(MusicPayload::scan);
    scanned.unwrap_or_else(|| read(raw, parts))
}

/// The bytes of `data` in `raw`, where the envelope found it.
fn data_of<'a>(raw: &'a [u8], parts: &Parts) -> Option<&'a [u8]> {
    parts.data.clone().and_then(|range| raw.get(range))
}

/// The typed event of a verified body whose envelope has been read: only `msg` and
/// `data` are parsed, where the envelope found them.
pub(super) fn build(envelope: Envelope, raw: Bytes) -> CallbackEvent {
    let parts = &envelope.parts;
    let payload = match envelope.family {
        Family::Music => Payload::Music(read_music(&raw, parts)),
        Family::Lyrics => Payload::Lyrics(read(&raw, parts)),
        Family::Wav => Payload::Wav(read(&raw, parts)),
        Family::Separation => Payload::Separation(read(&raw, parts)),
        Family::Midi => Payload::Midi(read(&raw, parts)),
        Family::Video => Payload::Video(read(&raw, parts)),
        Family::Cover => Payload::Cover(read(&raw, parts)),
        Family::Voice => Payload::Voice(read(&raw, parts)),
        Family::Unknown => Payload::Unknown,
    };
    let msg = if parts.repeated {
        None
    } else {
        decode_msg(&raw, parts.msg.as_ref())
    };
    CallbackEvent {
        meta: Meta {
            stage: Stage::from_wire(&envelope.stage),
            task_id: envelope.task_id,
            family: envelope.family,
            outcome: envelope.outcome,
            route: ApiRoute::Classic,
            code: envelope.code,
            msg,
            raw,
        },
        payload,
    }
}

/// `serde_json::from_slice`, retried once with lone UTF-16 surrogate escapes and bytes
/// that are not UTF-8 replaced by U+FFFD, and numbers beyond `f64`'s range by `null`.
///
/// serde_json refuses an escape such as `"\ud83c"` that is not half of a pair, but a
/// JavaScript sender writes exactly that when it cuts a title inside an emoji; one
/// such character must not cost a song. A byte that is not UTF-8 inside a string is
/// repaired the same way, so the typed parse and [`raw_json`] always agree.
///
/// [`raw_json`]: super::CallbackEvent::raw_json
pub(super) fn from_slice_tolerant<T: serde::de::DeserializeOwned>(
    raw: &[u8],
) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(raw) {
        Ok(value) => Ok(value),
        Err(error) => {
            // Bytes that are not UTF-8 become U+FFFD, as a lone surrogate escape does.
            let lossy = std::str::from_utf8(raw)
                .is_err()
                .then(|| String::from_utf8_lossy(raw).into_owned().into_bytes());
            let repaired = replace_lone_surrogates(lossy.as_deref().unwrap_or(raw)).or(lossy);
            let repaired =
                replace_numbers_out_of_range(repaired.as_deref().unwrap_or(raw)).or(repaired);
            match repaired {
                Some(repaired) => serde_json::from_slice(&repaired).map_err(|_| error),
                None => Err(error),
            }
        }
    }
}

/// The body with every number beyond `f64`'s range (such as `1E400`) replaced by
/// `null`, or `None` when it has none.
///
/// serde_json refuses such a number when it builds a value, but skips it unread where
/// the typed parse ignores the field; replacing it lets [`raw_json`] give a value for
/// every body the typed parse accepts. No genuine callback carries one.
///
/// [`raw_json`]: super::CallbackEvent::raw_json
fn replace_numbers_out_of_range(raw: &[u8]) -> Option<Vec<u8>> {
    let mut repaired: Option<Vec<u8>> = None;
    let mut copied_up_to = 0;
    let (mut in_string, mut escaped) = (false, false);
    let mut at = 0;
    while at < raw.len() {
        let byte = raw[at];
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            at += 1;
            continue;
        }
        if byte == b'"' {
            in_string = true;
            at += 1;
            continue;
        }
        if byte != b'-' && !byte.is_ascii_digit() {
            at += 1;
            continue;
        }
        let end = raw[at..]
            .iter()
            .position(|b| !matches!(b, b'0'..=b'9' | b'-' | b'+' | b'.' | b'e' | b'E'))
            .map_or(raw.len(), |length| at + length);
        // Out of range as serde_json reads it (its `f64` rounding is not Rust's): a
        // JSON number (which `IgnoredAny` checks, range aside) that it refuses as `f64`.
        let out_of_range = std::str::from_utf8(&raw[at..end]).is_ok_and(|token| {
            serde_json::from_str::<serde::de::IgnoredAny>(token).is_ok()
                && serde_json::from_str::<f64>(token).is_err()
        });
        if out_of_range {
            let out = repaired.get_or_insert_with(|| Vec::with_capacity(raw.len()));
            out.extend_from_slice(&raw[copied_up_to..at]);
            out.extend_from_slice(b"null");
            copied_up_to = end;
        }
        at = end;
    }
    let mut out = repaired?;
    out.extend_from_slice(&raw[copied_up_to..]);
    Some(out)
}

/// The body with every `\uXXXX` escape of a lone surrogate replaced by `\uFFFD`, or
/// `None` when it has none.
fn replace_lone_surrogates(raw: &[u8]) -> Option<Vec<u8>> {
    const REPLACEMENT: &[u8] = b"\\uFFFD";
    let unit_at = |at: usize| -> Option<u16> {
        let is_escape = raw.get(at) == Some(&b'\\') && raw.get(at + 1) == Some(&b'u');
        let digits = std::str::from_utf8(raw.get(at + 2..at + 6)?).ok()?;
        is_escape.then(|| u16::from_str_radix(digits, 16).ok())?
    };
    let is_high = |unit: u16| (0xD800..0xDC00).contains(&unit);
    let is_low = |unit: u16| (0xDC00..0xE000).contains(&unit);
    let mut repaired = Vec::with_capacity(raw.len());
    let mut changed = false;
    let mut at = 0;
    while at < raw.len() {
        if raw[at] != b'\\' {
            repaired.push(raw[at]);
            at += 1;
            continue;
        }
        let escape_len = match unit_at(at) {
            Some(high) if is_high(high) && unit_at(at + 6).is_some_and(is_low) => 12,
            Some(unit) if is_high(unit) || is_low(unit) => {
                repaired.extend_from_slice(REPLACEMENT);
                changed = true;
                at += 6;
                continue;
            }
            Some(_) => 6,
            // Any other escape is two bytes (`\\`, `\"`, `\n`, ...).
            None => 2,
        };
        let end = (at + escape_len).min(raw.len());
        repaired.extend_from_slice(&raw[at..end]);
        at = end;
    }
    changed.then_some(repaired)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::Outcome;

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
