//! Stage 2 of the pipeline: the envelope, the few fields that verification and dedup
//! need, read before the request is verified.
//!
//! One pass over the body ([`scan`](super::scan)) checks that it is JSON and finds
//! these fields and the marker keys the shapes look for ([`markers`](super::markers));
//! everything else is skipped without being built or copied: an unsigned body costs no
//! memory beyond its own bytes and the few short strings read here, whatever its shape.
//! The shapes ([`shape`](super::shape)) then decide the family, stage and outcome. The
//! pass also records where `msg` and `data` are, so the typed event of a verified
//! request ([`super::CallbackEvent::build`]) parses only them, once, without reading the
//! body again.

use std::ops::Range;

use serde::de::{Deserialize, Deserializer};

use super::error::{ParseError, ParseErrorKind};
use super::family::{ApiRoute, Family, Outcome};
use super::lenient;
use super::markers::{Found, Item, Key, Top};
use super::scan::{ScanError, Scanner};
use super::shape::spec::{decode, decode_label, label_text};
use super::shape::{self, Clues};

/// What the pipeline knows of a callback before it is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// From `data.task_id`, `data.taskId`, `task_id` or `taskId`, the first present.
    pub(crate) task_id: String,
    /// `data.callbackType`, at most 64 printable bytes; `""` when absent.
    pub(crate) callback_type: String,
    /// The key's stage, as the body's shape reads it: `callbackType` for music,
    /// lyrics and unknown bodies, the status for voice, `""` for the other families.
    pub(crate) stage: String,
    pub(crate) code: i64,
    pub(crate) family: Family,
    pub(crate) outcome: Outcome,
    /// The route the body's shape belongs to.
    pub(crate) route: ApiRoute,
    /// Where the typed event's parts are in the body.
    pub(crate) parts: Parts,
}

/// Where the members the typed event reads lie in the body, as the envelope found
/// them.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Parts {
    /// The value of `msg`.
    pub(crate) msg: Option<Range<usize>>,
    /// The value of `data`, when it is an object.
    pub(crate) data: Option<Range<usize>>,
    /// `msg` is there twice: a body serde would not read as a whole, delivered
    /// untyped.
    pub(crate) repeated: bool,
}

/// One scalar member decoded as the lenient rules of `lenient` read it.
macro_rules! lenient_field {
    ($name:ident, $read:path, $value:ty) => {
        struct $name(Option<$value>);

        impl<'de> Deserialize<'de> for $name {
            fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
                $read(d).map(Self)
            }
        }
    };
}
lenient_field!(IntegerField, lenient::integer, i64);
lenient_field!(StringField, lenient::string, String);

/// The text of `msg` at `range`, as the typed event carries it.
pub(super) fn decode_msg(raw: &[u8], range: Option<&Range<usize>>) -> Option<String> {
    decode::<StringField>(raw, range).ok().flatten()?.0
}

/// One pass over `raw`: checks it, and finds the envelope's members.
pub(super) fn scan(raw: &[u8]) -> Result<Found, ScanError> {
    let mut found = Found::default();
    let mut scanner = Scanner::new(raw);
    scanner.document(|scanner, key, escaped| {
        let Some(member) = Top::find(key, escaped) else {
            return scanner.value(1).map(drop);
        };
        if member == Top::Msg && found.top.has(Top::Msg) {
            found.repeated_msg = true;
            return scanner.value(1).map(drop);
        }
        let start = scanner.position();
        if member == Top::Data && scanner.peek() == Some(b'{') {
            let depth = scanner.open(1)?;
            scanner.object(|scanner, key, escaped| {
                data_member(scanner, depth, key, escaped, &mut found)
            })?;
            return found.top.record(member, start..scanner.position());
        }
        let value = scanner.value(1)?;
        found.top.record(member, value)
    })?;
    Ok(found)
}

/// One member of `data` (an object at nesting `depth`).
fn data_member(
    scanner: &mut Scanner<'_>,
    depth: usize,
    key: &[u8],
    escaped: bool,
    found: &mut Found,
) -> Result<(), ScanError> {
    let Some(key) = Key::find(key, escaped) else {
        return scanner.value(depth).map(drop);
    };
    if found.data.has(key) {
        return Err(ScanError::Duplicate(key.key()));
    }
    let start = scanner.position();
    if key == Key::Items && scanner.peek() == Some(b'[') {
        let depth = scanner.open(depth)?;
        scanner.array(|scanner, _| {
            if found.has_item || scanner.peek() != Some(b'{') {
                return scanner.value(depth).map(drop);
            }
            found.has_item = true;
            let depth = scanner.open(depth)?;
            scanner.object(|scanner, key, escaped| {
                let value = scanner.value(depth)?;
                match Item::find(key, escaped) {
                    Some(item) => found.item.record(item, value),
                    None => Ok(()),
                }
            })
        })?;
        return found.data.record(key, start..scanner.position());
    }
    let value = scanner.value(depth)?;
    found.data.record(key, value)
}

impl Envelope {
    /// Reads the envelope of `raw`. `family` is the family the request's path names,
    /// if any; otherwise the body's shape decides.
    pub(crate) fn parse(raw: &[u8], family: Option<Family>) -> Result<Self, ParseError> {
        let found = scan(raw)?;
        let code = decode::<IntegerField>(raw, found.top.get(Top::Code))?
            .and_then(|field| field.0)
            .ok_or(ParseErrorKind::MissingCode)?;
        let callback_type = label_text(
            decode_label(raw, found.data.get(Key::CallbackType))?,
            ParseErrorKind::BadCallbackType,
        )?;
        let status = decode_label(raw, found.data.get(Key::Status))?;
        let mut task_id = None;
        for range in [
            found.data.get(Key::TaskId),
            found.data.get(Key::TaskIdCamel),
            found.top.get(Top::TaskId),
            found.top.get(Top::TaskIdCamel),
        ] {
            task_id = decode::<StringField>(raw, range)?.and_then(|field| field.0);
            if task_id.is_some() {
                break;
            }
        }
        let task_id = task_id.ok_or(ParseErrorKind::MissingTaskId)?;
        let clues = Clues {
            raw,
            found: &found,
            code,
            callback_type: &callback_type,
            status: status.as_ref(),
        };
        let shape = shape::choose(&clues, family);
        let keyed = (shape.key)(&clues, family.or(shape.family).unwrap_or(Family::Unknown))?;
        let data = found
            .top
            .get(Top::Data)
            .cloned()
            .filter(|range| raw.get(range.start) == Some(&b'{'));
        Ok(Self {
            task_id,
            stage: keyed.stage,
            code,
            family: keyed.family,
            outcome: if keyed.failed {
                Outcome::Failure
            } else {
                Outcome::Success
            },
            route: shape.route,
            parts: Parts {
                msg: found.top.get(Top::Msg).cloned(),
                data,
                repeated: found.repeated_msg,
            },
            callback_type,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::scan::MAX_DEPTH;

    fn envelope(body: &str) -> Envelope {
        Envelope::parse(body.as_bytes(), None).expect(body)
    }

    #[test]
    fn shapes_name_their_family() {
        let cases = [
            (
                r#"{"code":200,"data":{"task_id":"t","audioWavUrl":null}}"#,
                Family::Wav,
            ),
            (
                r#"{"code":500,"data":{"task_id":"t","vocal_separation_info":null}}"#,
                Family::Separation,
            ),
            (
                r#"{"code":200,"data":{"task_id":"t","vocal_removal_info":{}}}"#,
                Family::Separation,
            ),
            (
                r#"{"code":200,"task_id":"t","data":{"state":"complete"}}"#,
                Family::Midi,
            ),
            (
                r#"{"code":451,"data":{"task_id":"t","video_url":null}}"#,
                Family::Video,
            ),
            (
                r#"{"code":501,"data":{"taskId":"t","images":null}}"#,
                Family::Cover,
            ),
            (
                r#"{"code":200,"data":{"taskId":"t","status":"wait_validating"}}"#,
                Family::Voice,
            ),
            (
                r#"{"code":200,"data":{"task_id":"t","callbackType":"complete","data":[{"text":"x"}]}}"#,
                Family::Lyrics,
            ),
            (
                r#"{"code":200,"data":{"task_id":"t","callbackType":"complete","data":[1,{"id":"x"}]}}"#,
                Family::Music,
            ),
            (
                r#"{"code":531,"data":{"task_id":"t","callbackType":"error"}}"#,
                Family::Music,
            ),
            (
                r#"{"code":400,"data":{"task_id":"t","callbackType":"complete","data":null}}"#,
                Family::Unknown,
            ),
            (r#"{"code":500,"data":{"taskId":"t"}}"#, Family::Unknown),
            (r#"{"code":200,"data":{"task_id":"t"}}"#, Family::Unknown),
        ];
        for (body, family) in cases {
            assert_eq!(envelope(body).family, family, "{body}");
        }
    }

    #[test]
    fn a_jobs_body_is_read_before_any_other_shape_and_on_every_path() {
        let body = |model: &str, state: &str, code: i64| {
            format!(
                r#"{{"code":{code},"msg":"m","data":{{"taskId":"t","model":{model},"state":{state},"resultJson":"{{}}"}}}}"#
            )
        };
        let cases = [
            (
                body(r#""ai-music-api/generate""#, r#""success""#, 200),
                Family::Music,
                "complete",
                Outcome::Success,
            ),
            (
                body(r#""ai-music-api/generate""#, r#""fail""#, 200),
                Family::Music,
                "error",
                Outcome::Failure,
            ),
            (
                body(r#""ai-music-api/generate""#, r#""success""#, 501),
                Family::Music,
                "complete",
                Outcome::Success,
            ),
            (
                body(r#""ai-music-api/generate""#, r#""success""#, 200),
                Family::Music,
                "complete",
                Outcome::Success,
            ),
            (
                body(r#""ai-music-api/generate-lyrics""#, r#""fail""#, 501),
                Family::Lyrics,
                "complete",
                Outcome::Failure,
            ),
            (
                body(
                    r#""ai-music-api/convert-to-wav-format""#,
                    r#""success""#,
                    200,
                ),
                Family::Wav,
                "",
                Outcome::Success,
            ),
            (
                body(r#""ai-music-api/create-voice""#, r#""fail""#, 200),
                Family::Voice,
                "fail",
                Outcome::Failure,
            ),
            (
                body(r#""ai-music-api/not-listed""#, r#""success""#, 200),
                Family::Unknown,
                "",
                Outcome::Success,
            ),
            (
                body(r#""sora-2-text-to-video""#, r#""success""#, 200),
                Family::Unknown,
                "",
                Outcome::Success,
            ),
            (
                body("null", r#""success""#, 200),
                Family::Unknown,
                "",
                Outcome::Success,
            ),
            (
                body("7", "null", 200),
                Family::Unknown,
                "",
                Outcome::Success,
            ),
            (
                body(r#""ai-music-api/generate""#, r#""generating""#, 200),
                Family::Music,
                "generating",
                Outcome::Success,
            ),
        ];
        for (body, family, stage, outcome) in cases {
            for path in [
                None,
                Some(Family::Wav),
                Some(Family::Midi),
                Some(Family::Music),
            ] {
                let envelope = Envelope::parse(body.as_bytes(), path).expect(&body);
                assert_eq!(
                    (
                        envelope.family,
                        envelope.stage.as_str(),
                        envelope.outcome,
                        envelope.route
                    ),
                    (family, stage, outcome, ApiRoute::Jobs),
                    "{body} on {path:?}"
                );
                assert_eq!(envelope.task_id, "t");
            }
        }
        // A long model is no model: not copied, not refused.
        let long = body(
            &format!(r#""ai-music-api/{}""#, "x".repeat(1000)),
            r#""success""#,
            200,
        );
        assert_eq!(envelope(&long).family, Family::Unknown);
        // A state that would name a key must be a short label.
        let bad = body(
            r#""ai-music-api/generate""#,
            &format!(r#""{}""#, "x".repeat(65)),
            200,
        );
        let error = Envelope::parse(bad.as_bytes(), None).expect_err("a long state");
        assert!(error.is_bad_callback_type(), "{error}");
        // `state` alone is still MIDI.
        let midi = envelope(r#"{"code":200,"task_id":"t","data":{"state":"complete"}}"#);
        assert_eq!((midi.family, midi.route), (Family::Midi, ApiRoute::Classic));
    }

    #[test]
    fn the_path_names_the_family_of_a_shapeless_failure() {
        let body = br#"{"code":500,"msg":"failed","data":{"taskId":"t"}}"#;
        let envelope = Envelope::parse(body, Some(Family::Midi)).expect("parses");
        assert_eq!(
            (envelope.family, envelope.outcome),
            (Family::Midi, Outcome::Failure)
        );
    }

    #[test]
    fn stage_and_outcome_follow_the_family() {
        let lyrics_failure = envelope(
            r#"{"code":400,"data":{"task_id":"t","callbackType":"complete","data":[{"status":"failed"}]}}"#,
        );
        assert_eq!(
            (lyrics_failure.stage.as_str(), lyrics_failure.outcome),
            ("complete", Outcome::Failure)
        );
        let voice = envelope(r#"{"code":200,"data":{"taskId":"t","status":"wait_validating"}}"#);
        assert_eq!(
            (voice.stage.as_str(), voice.outcome),
            ("wait_validating", Outcome::Success)
        );
        let voice_fail =
            envelope(r#"{"code":200,"data":{"taskId":"t","status":"processing_validate_fail"}}"#);
        assert_eq!(voice_fail.outcome, Outcome::Failure);
        let wav = envelope(
            r#"{"code":200,"data":{"task_id":"t","callbackType":"first","audioWavUrl":"u"}}"#,
        );
        assert_eq!((wav.stage.as_str(), wav.outcome), ("", Outcome::Success));
    }

    #[test]
    fn task_id_is_found_in_every_documented_place() {
        for body in [
            r#"{"code": 200, "data": {"task_id": "abc"}}"#,
            r#"{"code": 200, "data": {"taskId": "abc"}}"#,
            r#"{"code": 200, "task_id": "abc", "data": {"state": "complete"}}"#,
            r#"{"code": 200, "taskId": "abc", "data": null}"#,
        ] {
            assert_eq!(envelope(body).task_id, "abc", "{body}");
        }
    }

    #[test]
    fn keys_are_matched_and_refused_twice_as_serde_does() {
        // An escape in a key is decoded before the key is matched.
        let escaped = envelope(
            r#"{"code":200,"data":{"task\u005fid":"t","callback\u0054ype":"first","data":[{"\u0074ext":"x"}]}}"#,
        );
        assert_eq!(
            (
                escaped.task_id.as_str(),
                escaped.stage.as_str(),
                escaped.family
            ),
            ("t", "first", Family::Lyrics)
        );
        // A member the envelope reads, given twice, is refused; others are not.
        for body in [
            r#"{"code":200,"code":200,"data":{"task_id":"t"}}"#,
            r#"{"code":200,"data":{"task_id":"t","taskId":"u","task_id":"v"}}"#,
            r#"{"code":200,"data":{"task_id":"t","images":[],"images":null}}"#,
            r#"{"code":200,"data":{"task_id":"t","data":[{"text":"a","text":"b"}]}}"#,
        ] {
            let error = Envelope::parse(body.as_bytes(), None).expect_err(body);
            assert!(
                error.is_json() && error.to_string().contains("duplicate"),
                "{error}"
            );
        }
        let repeated = envelope(
            r#"{"code":200,"x":1,"x":2,"data":{"task_id":"t","data":[{"a":1},{"text":1,"text":2}]}}"#,
        );
        assert_eq!(repeated.family, Family::Music);
    }

    #[test]
    fn long_or_unprintable_labels_are_refused() {
        let long = "x".repeat(65);
        for (label, refused) in [
            ("x".repeat(64), false),
            (long, true),
            ("first\\n".to_owned(), true),
            ("caf\u{e9}".to_owned(), true),
        ] {
            let body =
                format!(r#"{{"code":200,"data":{{"task_id":"t","callbackType":"{label}"}}}}"#);
            let result = Envelope::parse(body.as_bytes(), None);
            assert_eq!(result.is_err(), refused, "{label}");
            if let Err(error) = result {
                assert!(error.is_bad_callback_type(), "{error}");
            }
            let voice = format!(r#"{{"code":200,"data":{{"taskId":"t","status":"{label}"}}}}"#);
            assert_eq!(
                Envelope::parse(voice.as_bytes(), None).is_err(),
                refused,
                "{label}"
            );
        }
    }

    #[test]
    fn depth_is_refused_where_a_json_value_could_not_be_built() {
        let nested = |depth: usize| {
            format!(
                r#"{{"code":200,"data":{{"task_id":"t"}},"x":{}{}}}"#,
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        let deepest = nested(MAX_DEPTH);
        assert!(Envelope::parse(deepest.as_bytes(), None).is_ok());
        assert!(serde_json::from_str::<serde_json::Value>(&deepest).is_ok());
        let too_deep = nested(MAX_DEPTH + 1);
        assert!(serde_json::from_str::<serde_json::Value>(&too_deep).is_err());
        let error = Envelope::parse(too_deep.as_bytes(), None).expect_err("too deep");
        assert!(error.is_too_deep(), "{error}");
        // Brackets inside strings do not count, however many there are.
        let quoted = format!(
            r#"{{"code":200,"data":{{"task_id":"t","x":"\"{}"}}}}"#,
            "[".repeat(500)
        );
        assert!(Envelope::parse(quoted.as_bytes(), None).is_ok());
    }
}
