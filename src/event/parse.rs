//! The body as the sender writes it, and its conversion into a [`CallbackEvent`].

use std::fmt;

use bytes::Bytes;
use serde::Deserialize;

use super::{CallbackEvent, FailureEvent, Meta, Stage, StageEvent, Track, lenient};

/// Why a body is not a callback (answered `400`).
#[derive(Debug)]
pub struct ParseError {
    kind: ParseErrorKind,
}

#[derive(Debug)]
enum ParseErrorKind {
    NotAnObject,
    Json(serde_json::Error),
    MissingTaskId,
    MissingCode,
}

impl ParseError {
    /// The body is not a JSON object.
    pub fn is_json(&self) -> bool {
        matches!(
            self.kind,
            ParseErrorKind::Json(_) | ParseErrorKind::NotAnObject
        )
    }

    /// No task id at `data.task_id`, `data.taskId`, `taskId` or `task_id`.
    pub fn is_missing_task_id(&self) -> bool {
        matches!(self.kind, ParseErrorKind::MissingTaskId)
    }

    /// No integer `code`.
    pub fn is_missing_code(&self) -> bool {
        matches!(self.kind, ParseErrorKind::MissingCode)
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ParseErrorKind::NotAnObject => f.write_str("body is not a JSON object"),
            ParseErrorKind::Json(error) => write!(f, "body is not a JSON object: {error}"),
            ParseErrorKind::MissingTaskId => f.write_str("body has no task id"),
            ParseErrorKind::MissingCode => f.write_str("body has no integer `code`"),
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

#[derive(Deserialize)]
struct WireEnvelope {
    #[serde(default, deserialize_with = "lenient::integer")]
    code: Option<i64>,
    #[serde(default, deserialize_with = "lenient::string")]
    msg: Option<String>,
    #[serde(default, rename = "taskId", deserialize_with = "lenient::string")]
    task_id: Option<String>,
    /// Midi's current pages put the id at the top level, snake case.
    #[serde(default, rename = "task_id", deserialize_with = "lenient::string")]
    task_id_snake: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    data: Option<WireData>,
}

#[derive(Deserialize, Default)]
struct WireData {
    #[serde(default, rename = "callbackType", deserialize_with = "lenient::string")]
    callback_type: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    task_id: Option<String>,
    #[serde(default, rename = "taskId", deserialize_with = "lenient::string")]
    task_id_camel: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    data: Vec<Track>,
    #[serde(default, deserialize_with = "lenient::string")]
    error: Option<String>,
}

/// `serde_json::from_slice`, retried once with lone UTF-16 surrogate escapes replaced.
///
/// serde_json refuses an escape such as `"\ud83c"` that is not half of a pair, but a
/// JavaScript sender writes exactly that when it cuts a title inside an emoji; one
/// such character must not cost a song.
pub(super) fn from_slice_tolerant<T: serde::de::DeserializeOwned>(
    raw: &[u8],
) -> Result<T, serde_json::Error> {
    match serde_json::from_slice(raw) {
        Ok(value) => Ok(value),
        Err(error) => match replace_lone_surrogates(raw) {
            Some(repaired) => serde_json::from_slice(&repaired).map_err(|_| error),
            None => Err(error),
        },
    }
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

pub(super) fn parse(raw: Bytes) -> Result<CallbackEvent, ParseError> {
    // serde reads a struct from a JSON array too; a callback is always an object.
    if raw.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err(ParseError {
            kind: ParseErrorKind::NotAnObject,
        });
    }
    let envelope: WireEnvelope = from_slice_tolerant(&raw).map_err(|error| ParseError {
        kind: ParseErrorKind::Json(error),
    })?;
    let code = envelope.code.ok_or(ParseError {
        kind: ParseErrorKind::MissingCode,
    })?;
    let data = envelope.data.unwrap_or_default();
    let task_id = data
        .task_id
        .or(data.task_id_camel)
        .or(envelope.task_id)
        .or(envelope.task_id_snake)
        .ok_or(ParseError {
            kind: ParseErrorKind::MissingTaskId,
        })?;
    let stage = Stage::from_wire(data.callback_type.as_deref().unwrap_or(""));
    let meta = Meta {
        task_id,
        stage,
        code,
        msg: envelope.msg,
        raw,
    };
    let tracks = data.data;
    if code != 200 || meta.stage == Stage::Error {
        return Ok(CallbackEvent::Failure(FailureEvent {
            meta,
            tracks,
            error: data.error,
        }));
    }
    let event = StageEvent { meta, tracks };
    Ok(match event.meta.stage {
        Stage::Text => CallbackEvent::Text(event),
        Stage::First => CallbackEvent::First(event),
        Stage::Complete => CallbackEvent::Complete(event),
        Stage::Error | Stage::Other(_) => CallbackEvent::Unknown(event),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn lone_surrogates_are_replaced_and_pairs_kept() {
        let body =
            br#"{"code":200,"msg":"cut \ud83c","data":{"callbackType":"complete","task_id":"t",
            "data":[{"title":"pair \ud83c\udfb5 low \udfb5 escaped \\ud83c"}]}}"#;
        let CallbackEvent::Complete(event) = CallbackEvent::from_json(&body[..]).expect("parses")
        else {
            panic!("complete expected")
        };
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
    fn task_id_is_found_in_every_documented_place() {
        for body in [
            r#"{"code": 200, "data": {"task_id": "abc"}}"#,
            r#"{"code": 200, "data": {"taskId": "abc"}}"#,
            r#"{"code": 200, "taskId": "abc", "data": null}"#,
            r#"{"code": 200, "task_id": "abc", "data": {"state": "complete"}}"#,
        ] {
            let event = CallbackEvent::from_json(body).expect(body);
            assert_eq!(event.task_id(), "abc", "{body}");
            assert!(matches!(event, CallbackEvent::Unknown(_)));
        }
    }

    #[test]
    fn code_decides_success_before_callback_type() {
        let event = CallbackEvent::from_json(
            r#"{"code": 400, "data": {"callbackType": "complete", "task_id": "t"}}"#,
        )
        .expect("parses");
        let CallbackEvent::Failure(failure) = event else {
            panic!("a non-200 code is a failure")
        };
        assert_eq!(failure.stage(), &Stage::Complete);
        let event = CallbackEvent::from_json(
            r#"{"code": "200", "data": {"callbackType": "error", "task_id": "t"}}"#,
        )
        .expect("parses");
        assert!(event.is_failure(), "callbackType error is a failure");
    }
}
