//! The envelope defined by serde: a derived `Deserialize` of the same members the scan
//! finds (`IgnoredAny` for every other one, a marker for a member whose presence is all
//! that counts), against which the hand-written pass of [`envelope`](super::envelope)
//! is held, in a unit test here and in the `envelope_differential` fuzz target.
//!
//! What each reader gives is one [`EnvelopeView`]: the decoded members (`code`, the task
//! id, the labels, the model), the set of marker keys present in `data`, and what the
//! first element of `data.data` is. Both readers decode the values with the same
//! lenient rules; they differ only in how they walk the body.
//!
//! # Why the hand-written pass stays
//!
//! Measured in one run of `cargo bench --bench pipeline -- envelope/` (criterion, on the
//! shared two-core machine; the music fixture `add_instrumental_complete.json`, 2 tracks,
//! 2.7 kB, and the jobs-route `music_generate_success.json`, 2.2 kB): see the figures in
//! `BENCHMARKS.md` ("envelope: scan or serde"). The scan is faster because it decodes
//! nothing it does not keep (serde's derive matches every key through a visitor and
//! reads every marker's value, where the scan records a range), and because it also
//! records where `msg` and `data` lie, which the derive cannot without
//! `serde_json/raw_value`; and the derive needs a second pass besides: serde_json skips
//! an ignored value without a depth limit, so a body nested deeper than a
//! `serde_json::Value` can be built would be accepted by it and give no `raw_json()`.

use serde::Deserialize;
use serde::de::{Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};

use super::lenient::{self, Label};
use super::markers::{Found, Item, Key, Top};
use super::shape::spec::{decode, decode_label};
use super::tolerant::from_slice_tolerant;

/// What a reader of the envelope found in a body: equal for both readers on every
/// body, or the fast path is wrong.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EnvelopeView {
    code: Option<i64>,
    task_ids: [Option<String>; 4],
    callback_type: Option<Label>,
    status: Option<Label>,
    state: Option<Label>,
    model: Option<String>,
    present: Vec<&'static str>,
    has_item: bool,
    item_keys: Vec<&'static str>,
}

/// Which reader reads the envelope.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum EnvelopeReader {
    /// The crate's hand-written pass (`envelope`).
    Scan,
    /// The serde-derived definition of the same envelope.
    Serde,
}

/// Reads the envelope of `body` with `reader`; `Err` with the reason when the body is
/// not one JSON object, or repeats a member the envelope reads. Only the scan refuses
/// a body nesting deeper than a `serde_json::Value` can be built (127 levels): serde_json
/// skips an ignored value without a depth limit. Its `Err` is then `"TooDeep"`.
///
/// ```
/// use suno_callback::testing::{EnvelopeReader, read_envelope};
///
/// let body = br#"{"code":200,"data":{"task_id":"t","callbackType":"first","data":[{"id":"a"}]}}"#;
/// assert_eq!(
///     read_envelope(EnvelopeReader::Scan, body),
///     read_envelope(EnvelopeReader::Serde, body)
/// );
/// ```
///
/// # Errors
///
/// The reason the reader refuses the body, as text.
pub fn read_envelope(reader: EnvelopeReader, body: &[u8]) -> Result<EnvelopeView, String> {
    match reader {
        EnvelopeReader::Scan => by_scan(body),
        EnvelopeReader::Serde => by_serde(body),
    }
}

/// Whether the two readers agree on `body`: both refuse it, both give the same view, or
/// the scan refuses it as too deep (a rule of its own, see [`read_envelope`]).
///
/// ```
/// use suno_callback::testing::envelope_readers_agree;
///
/// assert_eq!(envelope_readers_agree(br#"{"code":200,"data":{"taskId":"t","state":1}}"#), Ok(()));
/// ```
///
/// # Errors
///
/// What each reader gave, when they disagree.
pub fn envelope_readers_agree(body: &[u8]) -> Result<(), String> {
    let scan = by_scan(body);
    let serde = by_serde(body);
    match (&scan, &serde) {
        (Ok(scan), Ok(serde)) if scan == serde => Ok(()),
        (Err(_), Err(_)) => Ok(()),
        (Err(reason), _) if reason == "TooDeep" => Ok(()),
        _ => Err(format!("scan {scan:?}, serde {serde:?}")),
    }
}

/// The music payload's fast path (the scanner reading `data` and its tracks) against
/// serde, on the `data` object of `body` read as a music callback: `Ok` when the fast
/// path leaves it to serde or reads what serde reads.
///
/// ```
/// use suno_callback::testing::music_payload_agrees;
///
/// let body = br#"{"code":200,"data":{"task_id":"t","callbackType":"complete",
///     "data":[{"id":"a","title":"caf\u00e9","duration":"2.5"}]}}"#;
/// assert_eq!(music_payload_agrees(body), Ok(()));
/// ```
///
/// # Errors
///
/// Both payloads, when they differ.
pub fn music_payload_agrees(body: &[u8]) -> Result<(), String> {
    let Ok(envelope) = super::envelope::Envelope::parse(body, Some(super::family::Family::Music))
    else {
        return Ok(());
    };
    let Some(data) = envelope.parts.data.and_then(|range| body.get(range)) else {
        return Ok(());
    };
    let Some(scanned) = std::str::from_utf8(data)
        .ok()
        .and_then(super::payload::MusicPayload::scan)
    else {
        return Ok(());
    };
    match from_slice_tolerant::<super::payload::MusicPayload>(data) {
        Ok(serde) if serde == scanned => Ok(()),
        serde => Err(format!("scan {scanned:?}, serde {serde:?}")),
    }
}

fn by_scan(raw: &[u8]) -> Result<EnvelopeView, String> {
    let found = super::envelope::scan(raw).map_err(|error| format!("{error:?}"))?;
    view_of_found(raw, &found).map_err(|error| error.to_string())
}

/// A scalar read by `lenient::integer`.
struct Integer(Option<i64>);
impl<'de> Deserialize<'de> for Integer {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::integer(d).map(Self)
    }
}
/// A scalar read by `lenient::string`.
struct Text(Option<String>);
impl<'de> Deserialize<'de> for Text {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::string(d).map(Self)
    }
}

fn view_of_found(raw: &[u8], found: &Found) -> Result<EnvelopeView, super::error::ParseError> {
    let text =
        |range| Ok::<_, super::error::ParseError>(decode::<Text>(raw, range)?.and_then(|t| t.0));
    Ok(EnvelopeView {
        code: decode::<Integer>(raw, found.top.get(Top::Code))?.and_then(|i| i.0),
        task_ids: [
            text(found.data.get(Key::TaskId))?,
            text(found.data.get(Key::TaskIdCamel))?,
            text(found.top.get(Top::TaskId))?,
            text(found.top.get(Top::TaskIdCamel))?,
        ],
        callback_type: decode_label(raw, found.data.get(Key::CallbackType))?,
        status: decode_label(raw, found.data.get(Key::Status))?,
        state: decode_label(raw, found.data.get(Key::State))?,
        model: text(found.data.get(Key::Model))?,
        present: Key::ALL
            .iter()
            .filter(|&&key| found.has(key))
            .map(|key| key.key())
            .collect(),
        has_item: found.has_item,
        item_keys: Item::ALL
            .iter()
            .filter(|&&item| found.item.has(item))
            .map(|item| item.key())
            .collect(),
    })
}

/// The body, as serde derives it.
#[derive(Deserialize)]
struct Body {
    #[serde(default, deserialize_with = "lenient::integer")]
    code: Option<i64>,
    #[serde(default, deserialize_with = "lenient::string")]
    task_id: Option<String>,
    #[serde(default, rename = "taskId", deserialize_with = "lenient::string")]
    task_id_camel: Option<String>,
    #[serde(default, deserialize_with = "lenient::object")]
    data: Option<Data>,
}

/// A member marked present whatever its value (`null` included), read as `T`.
struct Present<T>(Option<T>);

impl<T> Default for Present<T> {
    fn default() -> Self {
        Self(None)
    }
}

/// `data`, as serde derives it: one field per marker key.
#[derive(Default, Deserialize)]
struct Data {
    #[serde(default, rename = "callbackType")]
    callback_type: Present<LabelValue>,
    #[serde(default)]
    task_id: Present<Text>,
    #[serde(default, rename = "taskId")]
    task_id_camel: Present<Text>,
    #[serde(default)]
    status: Present<LabelValue>,
    #[serde(default)]
    data: Present<Items>,
    #[serde(default, rename = "audioWavUrl")]
    audio_wav_url: Present<IgnoredAny>,
    #[serde(default)]
    vocal_separation_info: Present<IgnoredAny>,
    #[serde(default)]
    vocal_removal_info: Present<IgnoredAny>,
    #[serde(default)]
    instruments: Present<IgnoredAny>,
    #[serde(default)]
    state: Present<LabelValue>,
    #[serde(default)]
    video_url: Present<IgnoredAny>,
    #[serde(default)]
    images: Present<IgnoredAny>,
    #[serde(default, rename = "voiceId")]
    voice_id: Present<IgnoredAny>,
    #[serde(default, rename = "validateInfo")]
    validate_info: Present<IgnoredAny>,
    #[serde(default)]
    model: Present<Text>,
}

impl<'de, T: Deserialize<'de>> Deserialize<'de> for Present<T> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        T::deserialize(d).map(|value| Self(Some(value)))
    }
}

/// A label read by `lenient::label`.
struct LabelValue(Option<Label>);
impl<'de> Deserialize<'de> for LabelValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::label(d).map(Self)
    }
}

/// `data.data`: whether it is a list holding an object, and the variation keys of the
/// first one.
#[derive(Default)]
struct Items {
    first: Option<ItemKeys>,
}

#[derive(Deserialize)]
struct ItemKeys {
    #[serde(default)]
    text: Present<IgnoredAny>,
    #[serde(default)]
    error_message: Present<IgnoredAny>,
    #[serde(default)]
    status: Present<IgnoredAny>,
}

impl<'de> Deserialize<'de> for Items {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct ItemsVisitor;
        impl<'de> Visitor<'de> for ItemsVisitor {
            type Value = Items;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("any value")
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Items, A::Error> {
                // The first object read strictly (its repeated keys refused), every
                // element after it skipped, as the scan does.
                let mut items = Items::default();
                while items.first.is_none() {
                    match seq.next_element::<Element>()? {
                        Some(element) => items.first = element.0,
                        None => return Ok(items),
                    }
                }
                while seq.next_element::<IgnoredAny>()?.is_some() {}
                Ok(items)
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Items, A::Error> {
                while map.next_entry::<IgnoredAny, IgnoredAny>()?.is_some() {}
                Ok(Items::default())
            }
            fn visit_str<E: serde::de::Error>(self, _: &str) -> Result<Items, E> {
                Ok(Items::default())
            }
            fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<Items, E> {
                Ok(Items::default())
            }
            fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<Items, E> {
                Ok(Items::default())
            }
            fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<Items, E> {
                Ok(Items::default())
            }
            fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<Items, E> {
                Ok(Items::default())
            }
            fn visit_unit<E: serde::de::Error>(self) -> Result<Items, E> {
                Ok(Items::default())
            }
        }
        d.deserialize_any(ItemsVisitor)
    }
}

/// One element of `data.data`: an object's variation keys, anything else skipped.
struct Element(Option<ItemKeys>);

impl<'de> Deserialize<'de> for Element {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::object(d).map(Self)
    }
}

fn by_serde(raw: &[u8]) -> Result<EnvelopeView, String> {
    // A struct reads from a list too: only an object is an envelope.
    if raw.iter().find(|byte| !byte.is_ascii_whitespace()) != Some(&b'{') {
        return Err("NotAnObject".into());
    }
    let body: Body = from_slice_tolerant(raw).map_err(|error| error.to_string())?;
    let data = body.data.unwrap_or_default();
    let mut present = Vec::new();
    let mut mark = |key: Key, here: bool| {
        if here {
            present.push(key.key());
        }
    };
    mark(Key::CallbackType, data.callback_type.0.is_some());
    mark(Key::TaskId, data.task_id.0.is_some());
    mark(Key::TaskIdCamel, data.task_id_camel.0.is_some());
    mark(Key::Status, data.status.0.is_some());
    mark(Key::Items, data.data.0.is_some());
    mark(Key::AudioWavUrl, data.audio_wav_url.0.is_some());
    mark(
        Key::VocalSeparationInfo,
        data.vocal_separation_info.0.is_some(),
    );
    mark(Key::VocalRemovalInfo, data.vocal_removal_info.0.is_some());
    mark(Key::Instruments, data.instruments.0.is_some());
    mark(Key::State, data.state.0.is_some());
    mark(Key::VideoUrl, data.video_url.0.is_some());
    mark(Key::Images, data.images.0.is_some());
    mark(Key::VoiceId, data.voice_id.0.is_some());
    mark(Key::ValidateInfo, data.validate_info.0.is_some());
    mark(Key::Model, data.model.0.is_some());
    let first = data.data.0.and_then(|items| items.first);
    let mut item_keys = Vec::new();
    if let Some(first) = &first {
        for (item, here) in [
            (Item::Text, first.text.0.is_some()),
            (Item::ErrorMessage, first.error_message.0.is_some()),
            (Item::Status, first.status.0.is_some()),
        ] {
            if here {
                item_keys.push(item.key());
            }
        }
    }
    Ok(EnvelopeView {
        code: body.code,
        task_ids: [
            data.task_id.0.and_then(|t| t.0),
            data.task_id_camel.0.and_then(|t| t.0),
            body.task_id,
            body.task_id_camel,
        ],
        callback_type: data.callback_type.0.and_then(|l| l.0),
        status: data.status.0.and_then(|l| l.0),
        state: data.state.0.and_then(|l| l.0),
        model: data.model.0.and_then(|t| t.0),
        present,
        has_item: first.is_some(),
        item_keys,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::event::scan::MAX_DEPTH;

    /// Both readers on `body`: both refuse it, or both give the same view.
    fn agree(body: &[u8]) {
        if let Err(disagreement) = envelope_readers_agree(body) {
            panic!("{}: {disagreement}", String::from_utf8_lossy(body));
        }
    }

    #[test]
    fn the_scan_reads_every_fixture_and_every_change_of_one_as_serde_does() {
        let root = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures");
        let mut bodies = Vec::new();
        for dir in std::fs::read_dir(root).expect("fixtures") {
            let dir = dir.expect("entry").path();
            let Ok(files) = std::fs::read_dir(&dir) else {
                continue;
            };
            for file in files {
                let path = file.expect("entry").path();
                if path.extension().is_some_and(|ext| ext == "json") {
                    bodies.push(std::fs::read(&path).expect("fixture"));
                }
            }
        }
        assert!(bodies.len() > 40, "{} fixtures", bodies.len());
        for body in &bodies {
            assert!(by_scan(body).is_ok() || body.len() < 200 || body[0] != b'{');
            agree(body);
        }
        for body in [
            &br#"{"code":200,"data":{"task\u005fid":"t","callbackType":"first","data":[{"\u0074ext":"x"}]}}"#[..],
            br#"{"code":200,"msg":"a","msg":"b","data":{"taskId":"t","model":"m","state":"success"}}"#,
            br#"{"code":200,"code":200,"data":{"task_id":"t"}}"#,
            br#"{"code":200,"data":{"task_id":"t","data":[{"text":"a","text":"b"}]}}"#,
            br#"{"code":200,"data":{"task_id":"t","data":[1,{"a":1},{"text":1,"text":2}]}}"#,
            br#"{"code":"1e400","data":{"task_id":7,"status":null,"state":[1],"model":{}}}"#,
            br#"{"code":1e400,"data":"x","task_id":"u"}"#,
            b"{\"code\":200,\"data\":{\"task_id\":\"\xff\",\"callbackType\":\"\\ud83c\"}}",
            br#"{"code":200,"data":{"callbackType":"caf\u00e9","status":"x"}}"#,
            br#"[{"code":200}]"#,
            br#"{"code":200} x"#,
        ] {
            agree(body);
        }
        let nested = |depth: usize| {
            format!(
                r#"{{"code":200,"data":{{"task_id":"t"}},"x":{}{}}}"#,
                "[".repeat(depth - 1),
                "]".repeat(depth - 1)
            )
        };
        agree(nested(MAX_DEPTH).as_bytes());
        assert!(by_scan(nested(MAX_DEPTH).as_bytes()).is_ok());
        assert_eq!(
            by_scan(nested(MAX_DEPTH + 1).as_bytes()),
            Err("TooDeep".into())
        );
        assert!(by_serde(nested(MAX_DEPTH + 1).as_bytes()).is_ok());
        // Every byte of two callbacks replaced by each byte that matters to JSON.
        for body in [
            &include_bytes!("../../tests/fixtures/music/add_instrumental_complete.json")[..],
            include_bytes!("../../tests/fixtures/market/wav_success.json"),
        ] {
            let mut changed = body.to_vec();
            for at in 0..body.len() {
                for byte in *b"{}[]\",:\\ 0-.etn" {
                    changed[at] = byte;
                    agree(&changed);
                }
                changed[at] = body[at];
            }
        }
    }
}
