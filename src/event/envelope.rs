//! Stage 2 of the pipeline: the envelope, the few fields that verification and dedup
//! need, read before the request is verified.
//!
//! One pass over the body ([`scan`](super::scan)) checks that it is JSON and finds
//! these fields; everything else is skipped without being built or copied: an unsigned
//! body costs no memory beyond its own bytes and the few short strings read here,
//! whatever its shape. The pass also records where `msg` and `data` are, so the typed
//! event of a verified request ([`super::CallbackEvent::build`]) parses only them,
//! once, without reading the body again.

use std::ops::Range;

use serde::de::{Deserialize, Deserializer, Error as _};

use super::family::{Family, Outcome};
use super::lenient::{self, Label};
use super::parse::{ParseError, ParseErrorKind, from_slice_tolerant};
use super::scan::{ScanError, Scanner};

/// What the pipeline knows of a callback before it is verified.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Envelope {
    /// From `data.task_id`, `data.taskId`, `task_id` or `taskId`, the first present.
    pub(crate) task_id: String,
    /// `data.callbackType`, at most 64 printable bytes; `""` when absent.
    pub(crate) callback_type: String,
    /// The key's stage: `callbackType` for music, lyrics and unknown bodies, the status
    /// for voice, `""` for the other families.
    pub(crate) stage: String,
    pub(crate) code: i64,
    pub(crate) family: Family,
    pub(crate) outcome: Outcome,
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

/// The members of the outermost object the envelope reads.
const TOP: [&str; 5] = ["code", "task_id", "taskId", "data", "msg"];
const TOP_CODE: usize = 0;
const TOP_TASK_ID: usize = 1;
const TOP_TASK_ID_CAMEL: usize = 2;
const TOP_DATA: usize = 3;
const TOP_MSG: usize = 4;

/// The members of `data` the envelope reads: ids, labels, and the keys whose presence
/// names a family (from `DATA_WAV` on).
const DATA: [&str; 14] = [
    "callbackType",
    "task_id",
    "taskId",
    "status",
    "data",
    "audioWavUrl",
    "vocal_separation_info",
    "vocal_removal_info",
    "instruments",
    "state",
    "video_url",
    "images",
    "voiceId",
    "validateInfo",
];
const DATA_CALLBACK_TYPE: usize = 0;
const DATA_TASK_ID: usize = 1;
const DATA_TASK_ID_CAMEL: usize = 2;
const DATA_STATUS: usize = 3;
const DATA_ITEMS: usize = 4;
const DATA_WAV: usize = 5;
const DATA_SEPARATION: usize = 6;
const DATA_REMOVAL: usize = 7;
const DATA_INSTRUMENTS: usize = 8;
const DATA_STATE: usize = 9;
const DATA_VIDEO: usize = 10;
const DATA_IMAGES: usize = 11;
const DATA_VOICE_ID: usize = 12;
const DATA_VALIDATE_INFO: usize = 13;

/// The keys of the first object of `data.data` that tell a lyric variation from a
/// track: `text`, `error_message`, `status`.
const ITEM: [&str; 3] = ["text", "error_message", "status"];

/// Where the envelope's fields are, and which keys are there.
#[derive(Default)]
struct Found {
    top: [Option<Range<usize>>; TOP.len()],
    data: [Option<Range<usize>>; DATA.len()],
    /// A bit per name of `ITEM` present in the first object of `data.data`.
    item_keys: u8,
    /// `data.data` is a list holding an object.
    has_item: bool,
    repeated_msg: bool,
}

impl Found {
    fn has(&self, index: usize) -> bool {
        self.data[index].is_some()
    }

    /// The family the shape names, or `None` when it names none. `status`: `data.status`
    /// holds a label (not `""`, `null` or a container).
    fn family(&self, callback_type: &str, failed: bool, status: bool) -> Option<Family> {
        if self.has(DATA_WAV) {
            return Some(Family::Wav);
        }
        if self.has(DATA_SEPARATION) || self.has(DATA_REMOVAL) {
            return Some(Family::Separation);
        }
        if self.has(DATA_VIDEO) {
            return Some(Family::Video);
        }
        if self.has(DATA_IMAGES) {
            return Some(Family::Cover);
        }
        if self.has(DATA_INSTRUMENTS) || self.has(DATA_STATE) {
            return Some(Family::Midi);
        }
        if status || self.has(DATA_VOICE_ID) || self.has(DATA_VALIDATE_INFO) {
            return Some(Family::Voice);
        }
        match (self.has_item, callback_type) {
            (true, _) if self.item_keys != 0 => Some(Family::Lyrics),
            (true, _) => Some(Family::Music),
            (false, "") => None,
            // A lyrics failure keeps `complete` and has no items: without them it
            // cannot be told from a music failure typed `complete`.
            (false, "complete") if failed => None,
            (false, _) => Some(Family::Music),
        }
    }
}

/// The index of `key` among `names`, decoding its escapes if it has any (as serde
/// matches a field name).
#[inline]
pub(super) fn key_index(names: &[&str], key: &[u8], escaped: bool) -> Option<usize> {
    if !escaped {
        return names.iter().position(|name| name.as_bytes() == key);
    }
    let mut quoted = Vec::with_capacity(key.len() + 2);
    quoted.push(b'"');
    quoted.extend_from_slice(key);
    quoted.push(b'"');
    let decoded: String = from_slice_tolerant(&quoted).ok()?;
    names.iter().position(|name| *name == decoded)
}

/// Records where the value of the member `index` of `names` is, refusing a member
/// given twice (as serde refuses a duplicated field).
fn record(
    slots: &mut [Option<Range<usize>>],
    names: &[&'static str],
    index: usize,
    value: Range<usize>,
) -> Result<(), ScanError> {
    if slots[index].is_some() {
        return Err(ScanError::Duplicate(names[index]));
    }
    slots[index] = Some(value);
    Ok(())
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
lenient_field!(LabelField, lenient::label, Label);

/// The value at `range` of `raw`, read as `T`; `None` for an absent member, and for an
/// array or object, which no lenient scalar takes.
fn decode<T: serde::de::DeserializeOwned>(
    raw: &[u8],
    range: Option<&Range<usize>>,
) -> Result<Option<T>, ParseError> {
    let Some(value) = range.and_then(|range| raw.get(range.clone())) else {
        return Ok(None);
    };
    if let Some(b'[' | b'{') = value.first() {
        return Ok(None);
    }
    from_slice_tolerant(value)
        .map(Some)
        .map_err(|error| ParseErrorKind::Json(error).into())
}

/// The text of `msg` at `range`, as the typed event carries it.
pub(super) fn decode_msg(raw: &[u8], range: Option<&Range<usize>>) -> Option<String> {
    decode::<StringField>(raw, range).ok().flatten()?.0
}

impl From<ScanError> for ParseError {
    fn from(error: ScanError) -> Self {
        match error {
            ScanError::NotAnObject => ParseErrorKind::NotAnObject.into(),
            ScanError::TooDeep => ParseErrorKind::TooDeep.into(),
            ScanError::Syntax(what, at) => ParseErrorKind::Json(serde_json::Error::custom(
                format_args!("{what} at byte {at}"),
            ))
            .into(),
            ScanError::Duplicate(name) => ParseErrorKind::Json(serde_json::Error::custom(
                format_args!("duplicate field `{name}`"),
            ))
            .into(),
        }
    }
}

/// One pass over `raw`: checks it, and finds the envelope's members.
fn scan(raw: &[u8]) -> Result<Found, ScanError> {
    let mut found = Found::default();
    let mut scanner = Scanner::new(raw);
    scanner.document(|scanner, key, escaped| {
        let Some(index) = key_index(&TOP, key, escaped) else {
            return scanner.value(1).map(drop);
        };
        if index == TOP_MSG && found.top[TOP_MSG].is_some() {
            found.repeated_msg = true;
            return scanner.value(1).map(drop);
        }
        let start = scanner.position();
        if index == TOP_DATA && scanner.peek() == Some(b'{') {
            let depth = scanner.open(1)?;
            scanner.object(|scanner, key, escaped| {
                data_member(scanner, depth, key, escaped, &mut found)
            })?;
            return record(&mut found.top, &TOP, index, start..scanner.position());
        }
        let value = scanner.value(1)?;
        record(&mut found.top, &TOP, index, value)
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
    let Some(index) = key_index(&DATA, key, escaped) else {
        return scanner.value(depth).map(drop);
    };
    if found.data[index].is_some() {
        return Err(ScanError::Duplicate(DATA[index]));
    }
    let start = scanner.position();
    if index == DATA_ITEMS && scanner.peek() == Some(b'[') {
        let depth = scanner.open(depth)?;
        scanner.array(|scanner, _| {
            if found.has_item || scanner.peek() != Some(b'{') {
                return scanner.value(depth).map(drop);
            }
            found.has_item = true;
            let depth = scanner.open(depth)?;
            let mut seen = [None, None, None];
            scanner.object(|scanner, key, escaped| {
                let value = scanner.value(depth)?;
                match key_index(&ITEM, key, escaped) {
                    Some(index) => record(&mut seen, &ITEM, index, value),
                    None => Ok(()),
                }
            })?;
            found.item_keys = seen
                .iter()
                .enumerate()
                .filter(|(_, value)| value.is_some())
                .fold(0, |bits, (index, _)| bits | 1 << index);
            Ok(())
        })?;
        found.data[index] = Some(start..scanner.position());
        return Ok(());
    }
    let value = scanner.value(depth)?;
    found.data[index] = Some(value);
    Ok(())
}

/// A label (`callbackType`, a voice status) as the key's stage: `""` when absent, an
/// error when too long or not printable.
fn label_text(label: Option<Label>, bad: ParseErrorKind) -> Result<String, ParseError> {
    match label {
        None => Ok(String::new()),
        Some(Label::Text(text)) => Ok(text),
        Some(Label::Invalid) => Err(bad.into()),
    }
}

/// A label member, read leniently.
fn label(raw: &[u8], range: Option<&Range<usize>>) -> Result<Option<Label>, ParseError> {
    Ok(decode::<LabelField>(raw, range)?.and_then(|field| field.0))
}

impl Envelope {
    /// Reads the envelope of `raw`. `family` is the family the request's path names,
    /// if any; otherwise the body's shape decides.
    pub(crate) fn parse(raw: &[u8], family: Option<Family>) -> Result<Self, ParseError> {
        let found = scan(raw)?;
        let code = decode::<IntegerField>(raw, found.top[TOP_CODE].as_ref())?
            .and_then(|field| field.0)
            .ok_or(ParseErrorKind::MissingCode)?;
        let callback_type = label_text(
            label(raw, found.data[DATA_CALLBACK_TYPE].as_ref())?,
            ParseErrorKind::BadCallbackType,
        )?;
        let status = label(raw, found.data[DATA_STATUS].as_ref())?;
        let mut task_id = None;
        for range in [
            found.data[DATA_TASK_ID].as_ref(),
            found.data[DATA_TASK_ID_CAMEL].as_ref(),
            found.top[TOP_TASK_ID].as_ref(),
            found.top[TOP_TASK_ID_CAMEL].as_ref(),
        ] {
            task_id = decode::<StringField>(raw, range)?.and_then(|field| field.0);
            if task_id.is_some() {
                break;
            }
        }
        let task_id = task_id.ok_or(ParseErrorKind::MissingTaskId)?;
        let failed_by_code = code != 200 || callback_type == "error";
        let family = family
            .or_else(|| found.family(&callback_type, failed_by_code, status.is_some()))
            .unwrap_or(Family::Unknown);
        let (stage, outcome) = match family {
            Family::Voice => {
                let status = label_text(status, ParseErrorKind::BadStatus)?;
                let failed = failed_by_code
                    || matches!(status.as_str(), "fail" | "processing_validate_fail");
                (status, failed)
            }
            Family::Music | Family::Lyrics | Family::Unknown => {
                (callback_type.clone(), failed_by_code)
            }
            _ => (String::new(), code != 200),
        };
        let data = found.top[TOP_DATA]
            .clone()
            .filter(|range| raw.get(range.start) == Some(&b'{'));
        Ok(Self {
            task_id,
            callback_type,
            stage,
            code,
            family,
            outcome: if outcome {
                Outcome::Failure
            } else {
                Outcome::Success
            },
            parts: Parts {
                msg: found.top[TOP_MSG].clone(),
                data,
                repeated: found.repeated_msg,
            },
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
