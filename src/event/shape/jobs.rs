//! The jobs-route shape: a callback of a task created through
//! `POST /api/v1/jobs/createTask`, the same for every model:
//! `{code, msg, data: {taskId, model, state, resultJson, failCode, failMsg, param, ...}}`.
//!
//! Named by `data.model` with `data.state`, it is tried before every other shape, on the
//! shared path and on the family paths alike: a family path that receives a jobs body
//! still reads it as one, and its family comes from its model
//! ([`Family::from_model`]), not from the path, so that a callback and the same task's
//! details (fed back by the reconciler, `{code, msg, data: <recordInfo's data>}`) have
//! one dedup key wherever they arrive. A model the table does not know is
//! [`Family::Unknown`].
//!
//! Before verification only `model` and `state` are read (`model` is compared where it
//! lies, without a copy). The outcome is the state's: `fail` is a failure whatever
//! `code` says, `success` a success; any other state (the task-details answer's
//! `waiting`, `queuing`, `generating`) is its own stage. The stage of a final state is
//! the one the family's classic callback keys with: music `complete` (the task's last
//! callback, so `on_complete` runs) or `error`; lyrics `complete`; voice `success` or
//! `fail`; `""` for the families without stages and for an unknown model.
//!
//! After verification, `resultJson` (a JSON string, sometimes an object) is read with
//! the body's limits (the scanner checks its depth first), tolerantly: an old callback's
//! whole body or its `data` object, `{"code", "data": [...]}`, and the old field names of
//! each family; for music `data[]` (snake_case), `sunoData[]` or `response.sunoData[]`
//! (camelCase), else one track per `resultUrls` entry. Text that is not JSON is kept as
//! text ([`JobsMeta::result_json`]) and the event still runs.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Visitor};

use super::spec::{Built, Clues, Keyed, Shape, read};
use super::{cover, lyrics, midi, separation, video, voice, wav};
use crate::event::error::{ParseError, ParseErrorKind};
use crate::event::family::{ApiRoute, Family};
use crate::event::jobs::JobsMeta;
use crate::event::lenient;
use crate::event::markers::Key;
use crate::event::payload::{MusicPayload, Payload, VideoPayload, VoicePayload, WavPayload};
use crate::event::scan::Scanner;
use crate::event::time::CreateTime;
use crate::event::tolerant::from_slice_tolerant;
use crate::event::track::{CamelTrack, Track};

/// The jobs-route shape.
pub(crate) const JOBS: Shape = Shape {
    name: "jobs",
    family: None,
    route: ApiRoute::Jobs,
    markers: &[Key::Model, Key::State],
    detect: |clues| clues.has(Key::Model) && clues.has(Key::State),
    key,
    build,
};

/// The longest `model` value (with its quotes and escapes) compared with the table: no
/// model name is near it, and a longer one is no model this crate knows.
const MAX_MODEL_VALUE: usize = 256;

/// The family of the body's model, read where it lies; [`Family::Unknown`] for a model
/// the table does not hold, and for a `model` that is not a short string.
fn model_family(clues: &Clues<'_>) -> Family {
    let Some(value) = clues
        .value(Key::Model)
        .filter(|value| value.len() <= MAX_MODEL_VALUE && value.first() == Some(&b'"'))
    else {
        return Family::Unknown;
    };
    let family = match value.get(1..value.len() - 1) {
        Some(inner) if !inner.contains(&b'\\') => {
            std::str::from_utf8(inner).ok().and_then(Family::from_model)
        }
        _ => from_slice_tolerant::<String>(value)
            .ok()
            .and_then(|model| Family::from_model(&model)),
    };
    family.unwrap_or(Family::Unknown)
}

/// The stage a family's classic callback keys a final outcome with.
fn final_stage(family: Family, failed: bool) -> &'static str {
    match (family, failed) {
        (Family::Music, false) | (Family::Lyrics, _) => "complete",
        (Family::Music, true) => "error",
        (Family::Voice, false) => "success",
        (Family::Voice, true) => "fail",
        _ => "",
    }
}

fn key(clues: &Clues<'_>, _path: Family) -> Result<Keyed, ParseError> {
    let family = model_family(clues);
    let state = clues.label(Key::State, ParseErrorKind::BadState)?;
    let (stage, failed) = match state.as_str() {
        "success" => (final_stage(family, false).to_owned(), false),
        "fail" => (final_stage(family, true).to_owned(), true),
        _ => (state, clues.code != 200),
    };
    Ok(Keyed {
        family,
        stage,
        failed,
    })
}

/// `data` of a jobs-route callback, every field read leniently.
#[derive(Default, Deserialize)]
struct JobsData {
    #[serde(default, deserialize_with = "lenient::string")]
    model: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    state: Option<String>,
    #[serde(default, rename = "resultJson", deserialize_with = "echo")]
    result_json: Option<String>,
    #[serde(default, deserialize_with = "echo")]
    param: Option<String>,
    #[serde(default, rename = "failCode", deserialize_with = "lenient::string")]
    fail_code: Option<String>,
    #[serde(default, rename = "failMsg", deserialize_with = "lenient::string")]
    fail_msg: Option<String>,
    #[serde(default, rename = "costTime", deserialize_with = "lenient::float")]
    cost_time: Option<f64>,
    #[serde(
        default,
        rename = "consumeCredits",
        deserialize_with = "lenient::float"
    )]
    consume_credits: Option<f64>,
    #[serde(
        default,
        rename = "remainedCredits",
        deserialize_with = "lenient::float"
    )]
    remained_credits: Option<f64>,
    #[serde(
        default,
        rename = "createTime",
        deserialize_with = "lenient::create_time"
    )]
    create_time: Option<CreateTime>,
    #[serde(
        default,
        rename = "completeTime",
        deserialize_with = "lenient::create_time"
    )]
    complete_time: Option<CreateTime>,
    #[serde(
        default,
        rename = "updateTime",
        deserialize_with = "lenient::create_time"
    )]
    update_time: Option<CreateTime>,
}

/// A text the sender echoes (`resultJson`, `param`): a JSON string's text, or the JSON
/// text of an object or list written in its place; `None` for `null`, `""` and other
/// scalars.
fn echo<'de, D: Deserializer<'de>>(d: D) -> Result<Option<String>, D::Error> {
    struct EchoVisitor;
    impl<'de> Visitor<'de> for EchoVisitor {
        type Value = Option<String>;
        fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            f.write_str("a JSON text")
        }
        fn visit_str<E: de::Error>(self, v: &str) -> Result<Self::Value, E> {
            Ok((!v.is_empty()).then(|| v.to_owned()))
        }
        fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<Self::Value, A::Error> {
            let value = serde_json::Value::deserialize(de::value::MapAccessDeserializer::new(map))?;
            Ok(Some(value.to_string()))
        }
        fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Value, A::Error> {
            let value = serde_json::Value::deserialize(de::value::SeqAccessDeserializer::new(seq))?;
            Ok(Some(value.to_string()))
        }
        fn visit_i64<E: de::Error>(self, _: i64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_u64<E: de::Error>(self, _: u64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_f64<E: de::Error>(self, _: f64) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_bool<E: de::Error>(self, _: bool) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_unit<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
        fn visit_none<E: de::Error>(self) -> Result<Self::Value, E> {
            Ok(None)
        }
    }
    d.deserialize_any(EchoVisitor)
}

/// The object `text` holds, as the body's limits allow: `None` when it is not JSON,
/// nests too deep, or is no object. When the object is an old callback's whole body
/// (its `data` member an object), that `data` object.
fn result_object(text: &str) -> Option<&str> {
    let mut scanner = Scanner::new(text.as_bytes());
    let range = scanner.whole_value().ok()?;
    let object = text.get(range)?;
    if !object.starts_with('{') {
        return None;
    }
    let mut inner = None;
    let mut scanner = Scanner::new(object.as_bytes());
    scanner
        .document(|scanner, key, escaped| {
            let value = scanner.value(1)?;
            if !escaped && key == b"data" && object.as_bytes().get(value.start) == Some(&b'{') {
                inner = Some(value);
            }
            Ok(())
        })
        .ok()?;
    match inner {
        Some(range) => object.get(range),
        None => Some(object),
    }
}

/// A music `resultJson`: tracks under any of the names integrators report.
#[derive(Default, Deserialize)]
struct MusicResult {
    #[serde(default, deserialize_with = "lenient::list")]
    data: Vec<Track>,
    #[serde(default, rename = "sunoData", deserialize_with = "lenient::list")]
    suno_data: Vec<CamelTrack>,
    #[serde(default, deserialize_with = "lenient::object")]
    response: Option<Response>,
    #[serde(default, rename = "resultUrls", deserialize_with = "lenient::strings")]
    result_urls: Vec<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    error: Option<String>,
}

/// A task-details answer's `response`.
#[derive(Default, Deserialize)]
struct Response {
    #[serde(default, rename = "sunoData", deserialize_with = "lenient::list")]
    suno_data: Vec<CamelTrack>,
}

/// `resultUrls`, the generic models' result.
#[derive(Default, Deserialize)]
struct Urls {
    #[serde(default, rename = "resultUrls", deserialize_with = "lenient::strings")]
    result_urls: Vec<String>,
}

impl MusicResult {
    /// The tracks: `data[]`, else `sunoData[]`, else `response.sunoData[]`, else one per
    /// `resultUrls` entry.
    fn into_payload(self) -> MusicPayload {
        let camel = |tracks: Vec<CamelTrack>| tracks.into_iter().map(|track| track.0).collect();
        let data = if !self.data.is_empty() {
            self.data
        } else if !self.suno_data.is_empty() {
            camel(self.suno_data)
        } else if let Some(response) = self.response.filter(|r| !r.suno_data.is_empty()) {
            camel(response.suno_data)
        } else {
            self.result_urls
                .iter()
                .map(|url| Track::from_audio_url(url))
                .collect()
        };
        MusicPayload {
            data,
            error: self.error,
        }
    }
}

/// The payload of `family` from a `resultJson` object (`None`: none to read).
fn payload(family: Family, object: Option<&[u8]>, meta: &JobsMeta) -> Payload {
    let first_url = || meta.result_urls.first().cloned();
    match family {
        Family::Music => {
            let mut music = read::<MusicResult>(object).into_payload();
            if music.error.is_none() {
                music.error.clone_from(&meta.fail_msg);
            }
            Payload::Music(music)
        }
        Family::Wav => {
            let Payload::Wav(mut wav) = (wav::WAV.build)(family, object).payload else {
                return Payload::Wav(WavPayload::default());
            };
            wav.audio_wav_url = wav.audio_wav_url.or_else(first_url);
            Payload::Wav(wav)
        }
        Family::Video => {
            let Payload::Video(mut video) = (video::VIDEO.build)(family, object).payload else {
                return Payload::Video(VideoPayload::default());
            };
            video.video_url = video.video_url.or_else(first_url);
            Payload::Video(video)
        }
        Family::Voice => {
            let Payload::Voice(mut voice) = (voice::VOICE.build)(family, object).payload else {
                return Payload::Voice(VoicePayload::default());
            };
            voice.status = voice.status.or_else(|| meta.state.clone());
            Payload::Voice(voice)
        }
        Family::Lyrics => (lyrics::LYRICS.build)(family, object).payload,
        Family::Separation => (separation::SEPARATION.build)(family, object).payload,
        Family::Midi => (midi::MIDI.build)(family, object).payload,
        Family::Cover => (cover::COVER.build)(family, object).payload,
        Family::Unknown => Payload::Unknown,
    }
}

/// The payload and metadata of a verified jobs-route body's `data` object.
fn build(family: Family, data: Option<&[u8]>) -> Built {
    let jobs = read::<JobsData>(data);
    let object = jobs.result_json.as_deref().and_then(result_object);
    if jobs.result_json.is_some() && object.is_none() {
        tracing::debug!(
            len = jobs.result_json.as_ref().map_or(0, String::len),
            "jobs callback's `resultJson` is no JSON object; kept as text"
        );
    }
    let result_urls = object.map_or_else(Vec::new, |object| {
        read::<Urls>(Some(object.as_bytes())).result_urls
    });
    let meta = JobsMeta {
        model: jobs.model,
        state: jobs.state,
        result_urls,
        param: jobs.param,
        fail_code: jobs.fail_code,
        fail_msg: jobs.fail_msg,
        cost_time: jobs.cost_time,
        consume_credits: jobs.consume_credits,
        remained_credits: jobs.remained_credits,
        create_time: jobs.create_time,
        complete_time: jobs.complete_time,
        update_time: jobs.update_time,
        result_json: None,
    };
    let payload = payload(family, object.map(str::as_bytes), &meta);
    Built {
        payload,
        jobs: Some(Box::new(JobsMeta {
            result_json: jobs.result_json,
            ..meta
        })),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_result_object_is_checked_and_unwrapped() {
        assert_eq!(result_object(r#" {"a":1} "#), Some(r#"{"a":1}"#));
        assert_eq!(
            result_object(r#"{"code":200,"data":{"audioWavUrl":"u"}}"#),
            Some(r#"{"audioWavUrl":"u"}"#)
        );
        assert_eq!(
            result_object(r#"{"code":200,"data":[{"id":"a"}]}"#),
            Some(r#"{"code":200,"data":[{"id":"a"}]}"#)
        );
        for not in ["", "not json", "[1]", "1", r#"{"a":1"#, r#"{"a":1} x"#] {
            assert_eq!(result_object(not), None, "{not}");
        }
        let deep = format!("{{\"a\":{}{}}}", "[".repeat(200), "]".repeat(200));
        assert_eq!(result_object(&deep), None);
    }

    #[test]
    fn final_stages_are_the_classic_ones() {
        assert_eq!(final_stage(Family::Music, false), "complete");
        assert_eq!(final_stage(Family::Music, true), "error");
        assert_eq!(final_stage(Family::Lyrics, true), "complete");
        assert_eq!(final_stage(Family::Wav, false), "");
        assert_eq!(final_stage(Family::Unknown, false), "");
    }
}
