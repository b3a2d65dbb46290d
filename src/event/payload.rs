//! What each family's successful callback carries, typed: one type per family and the
//! [`Payload`] enum that holds one of them.
//!
//! Every field is optional and read leniently (numbers as strings, `null`, `""`, absent
//! keys), as for the music [`Track`]; fields not modelled here stay reachable through
//! the event's [`raw_json`](crate::CallbackEvent::raw_json).

use std::fmt;

use serde::Deserialize;
use serde::de::{Deserializer, MapAccess, Visitor};

use super::lenient;
use super::scan::Scanner;
use super::track::Track;

/// The typed content of a callback, by family. A failure carries what its body has
/// (often nothing: [`Payload::Unknown`] or an empty payload of its family).
///
/// ```
/// use suno_callback::CallbackEvent;
/// use suno_callback::event::Payload;
///
/// let body = r#"{"code":200,"msg":"success","data":{"task_id":"t1",
///     "audioWavUrl":"https://cdn.example.net/a.wav"}}"#;
/// let event = CallbackEvent::from_json(body)?;
/// let Payload::Wav(wav) = event.payload() else { unreachable!() };
/// assert_eq!(wav.audio_wav_url(), Some("https://cdn.example.net/a.wav"));
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Payload {
    /// [`Family::Music`](crate::Family::Music): tracks.
    Music(MusicPayload),
    /// [`Family::Lyrics`](crate::Family::Lyrics): lyric variations.
    Lyrics(LyricsPayload),
    /// [`Family::Wav`](crate::Family::Wav): the WAV file.
    Wav(WavPayload),
    /// [`Family::Separation`](crate::Family::Separation): stems.
    Separation(SeparationPayload),
    /// [`Family::Midi`](crate::Family::Midi): instruments and notes.
    Midi(MidiPayload),
    /// [`Family::Video`](crate::Family::Video): the video.
    Video(VideoPayload),
    /// [`Family::Cover`](crate::Family::Cover): cover images.
    Cover(CoverPayload),
    /// [`Family::Voice`](crate::Family::Voice): the voice task's status.
    Voice(VoicePayload),
    /// [`Family::Unknown`](crate::Family::Unknown): nothing typed; see `raw_json()`.
    Unknown,
}

/// Music (`data.data` tracks, and the `data.error` text some failures send).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct MusicPayload {
    #[serde(default, deserialize_with = "lenient::list")]
    pub(crate) data: Vec<Track>,
    #[serde(default, deserialize_with = "lenient::string")]
    pub(crate) error: Option<String>,
}

impl MusicPayload {
    /// The tracks; empty when `data.data` is `[]`, `null` or absent.
    pub fn tracks(&self) -> &[Track] {
        &self.data
    }
    /// The `data.error` text some pages send instead of a track list.
    pub fn error_detail(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

impl MusicPayload {
    /// The payload of `data`, an object scanned whole by the envelope already, read as
    /// [`Deserialize`] reads it, with the scanner instead of serde for the plain
    /// strings of its tracks. `None` when serde must decide (a duplicated field, an
    /// escaped key, a value serde refuses): the caller reads it with serde then.
    pub(crate) fn scan(data: &str) -> Option<Self> {
        let mut payload = Self::default();
        let (mut seen_data, mut seen_error) = (false, false);
        let mut scanner = Scanner::new(data.as_bytes());
        let read = scanner.document(|scanner, key, escaped| match (key, escaped) {
            (_, true) => Err(scanner.left_to_serde()),
            (b"data", _) if std::mem::replace(&mut seen_data, true) => Err(scanner.left_to_serde()),
            (b"error", _) if std::mem::replace(&mut seen_error, true) => {
                Err(scanner.left_to_serde())
            }
            (b"data", _) if scanner.peek() == Some(b'[') => {
                let depth = scanner.open(1)?;
                scanner.array(|scanner, _| {
                    if scanner.peek() == Some(b'{') {
                        payload.data.push(Track::scan(scanner, data, depth)?);
                        Ok(())
                    } else {
                        scanner.value(depth).map(drop)
                    }
                })
            }
            (b"error", _) => {
                let range = scanner.value(1)?;
                let value = data.get(range).ok_or_else(|| scanner.left_to_serde())?;
                let error = lenient::read_value(value, |d| lenient::string(d));
                payload.error = error.ok_or_else(|| scanner.left_to_serde())?;
                Ok(())
            }
            _ => scanner.value(1).map(drop),
        });
        read.ok().map(|()| payload)
    }
}

/// Lyrics (`data.data` variations; each may fail on its own inside a `200`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct LyricsPayload {
    #[serde(default, deserialize_with = "lenient::list")]
    data: Vec<LyricsVariation>,
}

impl LyricsPayload {
    /// Every variation, the failed ones included.
    pub fn variations(&self) -> &[LyricsVariation] {
        &self.data
    }
    /// The variations that did not fail.
    pub fn completed(&self) -> impl Iterator<Item = &LyricsVariation> {
        self.data.iter().filter(|variation| !variation.is_failed())
    }
}

/// One lyric variation: `text`, `title`, `status` (`complete` or `failed`),
/// `error_message`.
///
/// ```
/// use suno_callback::event::LyricsVariation;
///
/// let failed: LyricsVariation =
///     serde_json::from_str(r#"{"text":"","status":"failed","error_message":"flagged"}"#)?;
/// assert!(failed.is_failed());
/// assert_eq!(failed.text(), None);
/// assert_eq!(failed.error_message(), Some("flagged"));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct LyricsVariation {
    #[serde(default, deserialize_with = "lenient::string")]
    text: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    title: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    status: Option<String>,
    #[serde(default, deserialize_with = "lenient::string")]
    error_message: Option<String>,
    /// `errorMessage`, as the jobs route's `resultJson` writes it.
    #[serde(default, rename = "errorMessage", deserialize_with = "lenient::string")]
    error_message_camel: Option<String>,
}

impl LyricsVariation {
    /// The lyrics (`text`).
    pub fn text(&self) -> Option<&str> {
        self.text.as_deref()
    }
    /// The title (`title`).
    pub fn title(&self) -> Option<&str> {
        self.title.as_deref()
    }
    /// The status as sent (`complete`, `failed`).
    pub fn status(&self) -> Option<&str> {
        self.status.as_deref()
    }
    /// Why this variation failed (`error_message`, or `errorMessage` as the jobs
    /// route writes it).
    pub fn error_message(&self) -> Option<&str> {
        self.error_message
            .as_deref()
            .or(self.error_message_camel.as_deref())
    }
    /// Whether this variation failed: status `failed`, or an error message and no text.
    pub fn is_failed(&self) -> bool {
        self.status.as_deref() == Some("failed")
            || (self.text.is_none() && self.error_message().is_some())
    }
}

/// WAV (`data.audioWavUrl`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct WavPayload {
    #[serde(default, rename = "audioWavUrl", deserialize_with = "lenient::string")]
    pub(crate) audio_wav_url: Option<String>,
}

impl WavPayload {
    /// The WAV file (`audioWavUrl`).
    pub fn audio_wav_url(&self) -> Option<&str> {
        self.audio_wav_url.as_deref()
    }
}

/// Video (`data.video_url`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct VideoPayload {
    #[serde(default, deserialize_with = "lenient::string")]
    pub(crate) video_url: Option<String>,
}

impl VideoPayload {
    /// The MP4 file (`video_url`).
    pub fn video_url(&self) -> Option<&str> {
        self.video_url.as_deref()
    }
}

/// Cover images (`data.images`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct CoverPayload {
    #[serde(default, deserialize_with = "lenient::strings")]
    images: Vec<String>,
}

impl CoverPayload {
    /// The image URLs; empty when `images` is `null` or absent.
    pub fn images(&self) -> &[String] {
        &self.images
    }
}

/// Vocal separation: Kie's `vocal_separation_info` or sunoapi.org's
/// `vocal_removal_info`, two stems (`separate_vocal`), twelve (`split_stem`) or any
/// others a new mode sends.
///
/// ```
/// use suno_callback::CallbackEvent;
/// use suno_callback::event::Payload;
///
/// let body = r#"{"code":200,"data":{"task_id":"t","vocal_removal_info":{
///     "vocal_url":"https://x/v.mp3","instrumental_url":"https://x/i.mp3",
///     "origin_url":"","theremin_url":"https://x/t.mp3"}}}"#;
/// let event = CallbackEvent::from_json(body)?;
/// let Payload::Separation(stems) = event.payload() else { unreachable!() };
/// assert_eq!(stems.vocal_url(), Some("https://x/v.mp3"));
/// assert_eq!(stems.stem("theremin"), Some("https://x/t.mp3"));
/// assert_eq!(stems.origin_url(), None);
/// assert_eq!(stems.stems().len(), 3);
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct SeparationPayload {
    #[serde(default, deserialize_with = "lenient::object")]
    vocal_separation_info: Option<Stems>,
    #[serde(default, deserialize_with = "lenient::object")]
    vocal_removal_info: Option<Stems>,
}

impl SeparationPayload {
    fn info(&self) -> Option<&Stems> {
        self.vocal_separation_info
            .as_ref()
            .or(self.vocal_removal_info.as_ref())
    }
    /// Every stem with a URL, named as sent without `_url` (`vocal`, `instrumental`,
    /// `drums`, ...), in the body's order; `origin_url` is not a stem.
    pub fn stems(&self) -> &[Stem] {
        self.info().map_or(&[], |stems| &stems.stems)
    }
    /// The URL of the stem `name` (without `_url`).
    pub fn stem(&self, name: &str) -> Option<&str> {
        self.stems()
            .iter()
            .find(|stem| stem.name == name)
            .map(|stem| stem.url.as_str())
    }
    /// The vocals (`vocal_url`).
    pub fn vocal_url(&self) -> Option<&str> {
        self.stem("vocal")
    }
    /// The instrumental (`instrumental_url`, two-stem mode).
    pub fn instrumental_url(&self) -> Option<&str> {
        self.stem("instrumental")
    }
    /// The source audio (`origin_url`), often empty.
    pub fn origin_url(&self) -> Option<&str> {
        self.info().and_then(|stems| stems.origin.as_deref())
    }
    /// Which key held the stems: `vocal_separation_info` (Kie) or
    /// `vocal_removal_info` (sunoapi.org); `None` when neither was an object.
    pub fn info_key(&self) -> Option<&'static str> {
        if self.vocal_separation_info.is_some() {
            Some("vocal_separation_info")
        } else if self.vocal_removal_info.is_some() {
            Some("vocal_removal_info")
        } else {
            None
        }
    }
}

/// One stem of a separation: its name (the key without `_url`) and its URL.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stem {
    /// The key as sent without its `_url` suffix: `vocal`, `drums`, ...
    pub name: String,
    /// The stem's URL.
    pub url: String,
}

/// The stems object: every key with a non-empty string value.
#[derive(Clone, Debug, Default, PartialEq)]
struct Stems {
    origin: Option<String>,
    stems: Vec<Stem>,
}

impl<'de> Deserialize<'de> for Stems {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct StemsVisitor;
        impl<'de> Visitor<'de> for StemsVisitor {
            type Value = Stems;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("an object of stem URLs")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Stems, A::Error> {
                let mut stems = Stems::default();
                while let Some(key) = map.next_key::<String>()? {
                    let Url(url) = map.next_value()?;
                    let Some(url) = url else { continue };
                    let name = key.strip_suffix("_url").unwrap_or(&key);
                    if name == "origin" {
                        stems.origin = Some(url);
                    } else if !stems.stems.iter().any(|stem| stem.name == name) {
                        stems.stems.push(Stem {
                            name: name.to_owned(),
                            url,
                        });
                    }
                }
                Ok(stems)
            }
        }
        d.deserialize_map(StemsVisitor)
    }
}

/// A lenient string value.
struct Url(Option<String>);

impl<'de> Deserialize<'de> for Url {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        lenient::string(d).map(Url)
    }
}

/// MIDI (`data.state`, `data.instruments`).
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct MidiPayload {
    #[serde(default, deserialize_with = "lenient::string")]
    state: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    instruments: Vec<Instrument>,
}

impl MidiPayload {
    /// The state as sent (`complete`).
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }
    /// The instruments.
    pub fn instruments(&self) -> &[Instrument] {
        &self.instruments
    }
}

/// One MIDI instrument: its name and notes.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Instrument {
    #[serde(default, deserialize_with = "lenient::string")]
    name: Option<String>,
    #[serde(default, deserialize_with = "lenient::list")]
    notes: Vec<Note>,
}

impl Instrument {
    /// The General MIDI name (`Drums`, `Electric Bass (finger)`, ...).
    pub fn name(&self) -> Option<&str> {
        self.name.as_deref()
    }
    /// The notes.
    pub fn notes(&self) -> &[Note] {
        &self.notes
    }
}

/// One MIDI note. `start` and `end` are seconds, sent as numbers or strings.
///
/// ```
/// use suno_callback::event::Note;
///
/// let note: Note = serde_json::from_str(r#"{"pitch":73,"start":"0.5","end":1.25,"velocity":1}"#)?;
/// assert_eq!((note.pitch(), note.start(), note.end()), (Some(73), Some(0.5), Some(1.25)));
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct Note {
    #[serde(default, deserialize_with = "lenient::integer")]
    pitch: Option<i64>,
    #[serde(default, deserialize_with = "lenient::float")]
    start: Option<f64>,
    #[serde(default, deserialize_with = "lenient::float")]
    end: Option<f64>,
    #[serde(default, deserialize_with = "lenient::float")]
    velocity: Option<f64>,
}

impl Note {
    /// The MIDI pitch (`pitch`).
    pub fn pitch(&self) -> Option<i64> {
        self.pitch
    }
    /// When the note starts, in seconds (`start`).
    pub fn start(&self) -> Option<f64> {
        self.start
    }
    /// When the note ends, in seconds (`end`).
    pub fn end(&self) -> Option<f64> {
        self.end
    }
    /// The velocity (`velocity`), `0.0` to `1.0` in the pages' examples.
    pub fn velocity(&self) -> Option<f64> {
        self.velocity
    }
}

/// Voice (sunoapi.org): `status`, and `validateInfo`, `voiceId`, `errorCode`,
/// `errorMessage` as the step sends them.
#[derive(Clone, Debug, Default, PartialEq, Deserialize)]
#[non_exhaustive]
pub struct VoicePayload {
    #[serde(default, deserialize_with = "lenient::string")]
    pub(crate) status: Option<String>,
    #[serde(default, rename = "validateInfo", deserialize_with = "lenient::string")]
    validate_info: Option<String>,
    #[serde(default, rename = "voiceId", deserialize_with = "lenient::string")]
    voice_id: Option<String>,
    #[serde(default, rename = "errorCode", deserialize_with = "lenient::integer")]
    error_code: Option<i64>,
    #[serde(default, rename = "errorMessage", deserialize_with = "lenient::string")]
    error_message: Option<String>,
}

impl VoicePayload {
    /// The status.
    pub fn status(&self) -> VoiceStatus {
        VoiceStatus::from_wire(self.status.as_deref().unwrap_or(""))
    }
    /// The text to read aloud for validation (`validateInfo`, with `wait_validating`).
    pub fn validate_info(&self) -> Option<&str> {
        self.validate_info.as_deref()
    }
    /// The new voice (`voiceId`, with `success`).
    pub fn voice_id(&self) -> Option<&str> {
        self.voice_id.as_deref()
    }
    /// The error code of a failed step (`errorCode`).
    pub fn error_code(&self) -> Option<i64> {
        self.error_code
    }
    /// The error text of a failed step (`errorMessage`).
    pub fn error_message(&self) -> Option<&str> {
        self.error_message.as_deref()
    }
}

/// A voice task's `status`. `wait_validating` is a step (the user must now read
/// [`validate_info`](VoicePayload::validate_info) aloud), not the end.
///
/// ```
/// use suno_callback::event::VoiceStatus;
///
/// assert_eq!(VoiceStatus::from_wire("wait_validating"), VoiceStatus::WaitValidating);
/// assert!(!VoiceStatus::WaitValidating.is_final());
/// assert!(VoiceStatus::Fail.is_final());
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum VoiceStatus {
    /// `wait_processing`.
    WaitProcessing,
    /// `processing_validate`.
    ProcessingValidate,
    /// `wait_validating`: the recording must now be validated.
    WaitValidating,
    /// `processing_validate_fail`: validation failed.
    ProcessingValidateFail,
    /// `success`.
    Success,
    /// `fail`.
    Fail,
    /// Any other value (`""` when absent).
    Other(String),
}

impl VoiceStatus {
    /// The status for a wire value.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "wait_processing" => Self::WaitProcessing,
            "processing_validate" => Self::ProcessingValidate,
            "wait_validating" => Self::WaitValidating,
            "processing_validate_fail" => Self::ProcessingValidateFail,
            "success" => Self::Success,
            "fail" => Self::Fail,
            other => Self::Other(other.to_owned()),
        }
    }

    /// Whether no further callback follows for this step: `success`, `fail` or
    /// `processing_validate_fail`.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Success | Self::Fail | Self::ProcessingValidateFail
        )
    }
}
