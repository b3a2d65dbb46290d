//! Stage 2 of the pipeline: the envelope, the few fields that verification and dedup
//! need, read before the request is verified.
//!
//! Everything else in the body is skipped without being built (serde's `IgnoredAny`):
//! an unsigned body costs no memory beyond its own bytes and the few short strings
//! read here, whatever its shape. The tracks and other payloads are built only for a
//! verified request ([`super::CallbackEvent::build`]).

use serde::Deserialize;

use super::family::{Family, Outcome};
use super::lenient::{self, Label};
use super::parse::{ParseError, ParseErrorKind, from_slice_tolerant};

/// The deepest nesting of arrays and objects a body may have. serde_json refuses to
/// build a `serde_json::Value` deeper than this, so a deeper body could be typed but
/// not given back by `raw_json()`; such a body is no callback and is refused at once.
pub(crate) const MAX_DEPTH: usize = 127;

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
}

#[derive(Deserialize)]
struct WireEnvelope {
    #[serde(default, deserialize_with = "lenient::integer")]
    code: Option<i64>,
    #[serde(default, deserialize_with = "lenient::string")]
    task_id: Option<String>,
    #[serde(default, rename = "taskId", deserialize_with = "lenient::string")]
    task_id_camel: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    data: Option<WireData>,
}

/// `data`, as far as the envelope reads it: ids, labels, and which keys are there.
#[derive(Deserialize, Default)]
struct WireData {
    #[serde(default, rename = "callbackType", deserialize_with = "lenient::label")]
    callback_type: Option<Label>,
    #[serde(default, deserialize_with = "lenient::string")]
    task_id: Option<String>,
    #[serde(default, rename = "taskId", deserialize_with = "lenient::string")]
    task_id_camel: Option<String>,
    #[serde(default, deserialize_with = "lenient::label")]
    status: Option<Label>,
    /// Only the first object of the list is looked at (lyrics or music?).
    #[serde(default, deserialize_with = "lenient::first_object")]
    data: Option<ItemKeys>,
    #[serde(default, rename = "audioWavUrl", deserialize_with = "lenient::present")]
    audio_wav_url: bool,
    #[serde(default, deserialize_with = "lenient::present")]
    vocal_separation_info: bool,
    #[serde(default, deserialize_with = "lenient::present")]
    vocal_removal_info: bool,
    #[serde(default, deserialize_with = "lenient::present")]
    instruments: bool,
    #[serde(default, deserialize_with = "lenient::present")]
    state: bool,
    #[serde(default, deserialize_with = "lenient::present")]
    video_url: bool,
    #[serde(default, deserialize_with = "lenient::present")]
    images: bool,
    #[serde(default, rename = "voiceId", deserialize_with = "lenient::present")]
    voice_id: bool,
    #[serde(
        default,
        rename = "validateInfo",
        deserialize_with = "lenient::present"
    )]
    validate_info: bool,
}

/// The keys of the first item of `data.data` that tell a lyric variation from a track.
#[derive(Deserialize)]
struct ItemKeys {
    #[serde(default, deserialize_with = "lenient::present")]
    text: bool,
    #[serde(default, deserialize_with = "lenient::present")]
    error_message: bool,
    #[serde(default, deserialize_with = "lenient::present")]
    status: bool,
}

impl ItemKeys {
    fn is_lyrics(&self) -> bool {
        self.text || self.error_message || self.status
    }
}

impl WireData {
    /// The family the shape names, or `None` when it names none.
    fn family(&self, callback_type: &str, failed: bool) -> Option<Family> {
        if self.audio_wav_url {
            return Some(Family::Wav);
        }
        if self.vocal_separation_info || self.vocal_removal_info {
            return Some(Family::Separation);
        }
        if self.video_url {
            return Some(Family::Video);
        }
        if self.images {
            return Some(Family::Cover);
        }
        if self.instruments || self.state {
            return Some(Family::Midi);
        }
        if self.status.is_some() || self.voice_id || self.validate_info {
            return Some(Family::Voice);
        }
        match (&self.data, callback_type) {
            (Some(item), _) if item.is_lyrics() => Some(Family::Lyrics),
            (Some(_), _) => Some(Family::Music),
            (None, "") => None,
            // A lyrics failure keeps `complete` and has no items: without them it
            // cannot be told from a music failure typed `complete`.
            (None, "complete") if failed => None,
            (None, _) => Some(Family::Music),
        }
    }
}

impl Envelope {
    /// Reads the envelope of `raw`. `family` is the family the request's path names,
    /// if any; otherwise the body's shape decides.
    pub(crate) fn parse(raw: &[u8], family: Option<Family>) -> Result<Self, ParseError> {
        // serde reads a struct from a JSON array too; a callback is always an object.
        if raw.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
            return Err(ParseErrorKind::NotAnObject.into());
        }
        if nesting_depth_exceeds(raw, MAX_DEPTH) {
            return Err(ParseErrorKind::TooDeep.into());
        }
        let wire: WireEnvelope = from_slice_tolerant(raw)
            .map_err(|error| ParseError::from(ParseErrorKind::Json(error)))?;
        let code = wire.code.ok_or(ParseErrorKind::MissingCode)?;
        let data = wire.data.unwrap_or_default();
        let callback_type = match &data.callback_type {
            None => String::new(),
            Some(Label::Text(text)) => text.clone(),
            Some(Label::Invalid) => return Err(ParseErrorKind::BadCallbackType.into()),
        };
        let task_id = data
            .task_id
            .clone()
            .or_else(|| data.task_id_camel.clone())
            .or(wire.task_id)
            .or(wire.task_id_camel)
            .ok_or(ParseErrorKind::MissingTaskId)?;
        let failed_by_code = code != 200 || callback_type == "error";
        let family = family
            .or_else(|| data.family(&callback_type, failed_by_code))
            .unwrap_or(Family::Unknown);
        let (stage, outcome) = match family {
            Family::Voice => {
                let status = match &data.status {
                    None => String::new(),
                    Some(Label::Text(text)) => text.clone(),
                    Some(Label::Invalid) => return Err(ParseErrorKind::BadStatus.into()),
                };
                let failed = failed_by_code
                    || matches!(status.as_str(), "fail" | "processing_validate_fail");
                (status, failed)
            }
            Family::Music | Family::Lyrics | Family::Unknown => {
                (callback_type.clone(), failed_by_code)
            }
            _ => (String::new(), code != 200),
        };
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
        })
    }
}

/// Whether arrays and objects in `raw` nest deeper than `limit`, counting only
/// brackets outside strings. No allocation.
fn nesting_depth_exceeds(raw: &[u8], limit: usize) -> bool {
    // The depth never exceeds the number of opening brackets. Counting them is a loop
    // the compiler vectorizes, several times cheaper than the walk below, and every
    // callback the sender writes has far fewer than `limit`: most bodies stop here.
    // `[` (0x5b) and `{` (0x7b) are the only bytes that are `{` with bit 0x20 set; a
    // byte-wide sum over chunks of 255 cannot overflow and runs 16 bytes at a time.
    let opening: usize = raw
        .chunks(255)
        .map(|chunk| {
            let count = chunk
                .iter()
                .fold(0u8, |sum, &byte| sum + u8::from(byte | 0x20 == b'{'));
            usize::from(count)
        })
        .sum();
    if opening <= limit {
        return false;
    }
    let mut depth = 0usize;
    let mut in_string = false;
    let mut escaped = false;
    for &byte in raw {
        if in_string {
            match (escaped, byte) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match byte {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

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
    fn depth_is_counted_exactly_on_both_sides_of_the_bracket_count() {
        // Few brackets: decided by counting them.
        assert!(!nesting_depth_exceeds(b"[{}]", 2));
        assert!(nesting_depth_exceeds(b"[{}]", 1));
        // More brackets than the limit, side by side or quoted: decided by the walk.
        assert!(!nesting_depth_exceeds(b"[[],[],[]]", 2));
        assert!(!nesting_depth_exceeds(br#"["[[[[", {"k": "{{{{"}]"#, 2));
        assert!(nesting_depth_exceeds(br#"[[["\"[[["]]]"#, 2));
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
