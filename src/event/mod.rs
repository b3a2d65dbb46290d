//! The typed events: the envelope read before verification ([`envelope`]), and the
//! whole event built from a verified body ([`CallbackEvent`]).
//!
//! Parsing is strict only about what the pipeline cannot work without (a JSON object
//! with a `code` and a task id, a short printable `callbackType`) and tolerant of
//! everything else, because a body answered `400` three times is a song the sender
//! will never deliver again.

pub(crate) mod envelope;
mod failure;
mod family;
mod lenient;
mod parse;
mod payload;
mod scan;
mod track;

use std::fmt;

use bytes::Bytes;

pub(crate) use envelope::Envelope;
pub use failure::FailureReason;
pub use family::{ApiRoute, Family, Outcome, UnknownFamily};
pub use parse::ParseError;
pub use payload::{
    CoverPayload, Instrument, LyricsPayload, LyricsVariation, MidiPayload, MusicPayload, Note,
    Payload, SeparationPayload, Stem, VideoPayload, VoicePayload, VoiceStatus, WavPayload,
};
pub use track::{CreateTime, Track};

/// The stage of a task that a callback reports: `data.callbackType` for music and
/// lyrics, `data.status` for voice, `Other("")` for families without stages.
///
/// ```
/// use suno_callback::Stage;
///
/// assert_eq!(Stage::from_wire("first"), Stage::First);
/// assert_eq!(Stage::from_wire("remix"), Stage::Other("remix".into()));
/// assert_eq!(Stage::Other("remix".into()).as_str(), "remix");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// `text`: the lyrics or text are done.
    Text,
    /// `first`: the first track is done.
    First,
    /// `complete`: all tracks are done.
    Complete,
    /// `error`: the task failed.
    Error,
    /// Any other value, or `""` when the body has no `callbackType`.
    Other(String),
}

impl Stage {
    /// The stage for a `callbackType` value.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "text" => Self::Text,
            "first" => Self::First,
            "complete" => Self::Complete,
            "error" => Self::Error,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The `callbackType` value, as the sender wrote it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Text => "text",
            Self::First => "first",
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What every event carries, whatever its family.
#[derive(Clone)]
struct Meta {
    task_id: String,
    family: Family,
    stage: Stage,
    outcome: Outcome,
    route: ApiRoute,
    code: i64,
    msg: Option<String>,
    raw: Bytes,
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meta")
            .field("task_id", &self.task_id)
            .field("family", &self.family)
            .field("stage", &self.stage)
            .field("outcome", &self.outcome)
            .field("route", &self.route)
            .field("code", &self.code)
            .field("msg", &self.msg)
            .field("raw_len", &self.raw.len())
            .finish()
    }
}

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
/// assert_eq!(failure.reason(), Some(suno_callback::FailureReason::FailedCreditsRefunded));
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
    pub fn from_json_as(family: Family, body: impl Into<Bytes>) -> Result<Self, ParseError> {
        let raw = body.into();
        let envelope = Envelope::parse(&raw, Some(family))?;
        Ok(Self::build(envelope, raw))
    }

    /// The whole event of a body whose envelope was read (after verification).
    pub(crate) fn build(envelope: Envelope, raw: Bytes) -> Self {
        parse::build(envelope, raw)
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
    /// shape tells it.
    pub fn api_route(&self) -> ApiRoute {
        self.meta.route
    }

    /// Whether the callback reports a failure.
    pub fn is_failure(&self) -> bool {
        self.meta.outcome == Outcome::Failure
    }

    /// The callback's `code`: `200` on success.
    pub fn code(&self) -> i64 {
        self.meta.code
    }

    /// The documented reason of a failure's `code`; `None` on success.
    pub fn reason(&self) -> Option<FailureReason> {
        self.is_failure()
            .then(|| FailureReason::from_code(self.meta.code))
    }

    /// The callback's `msg`, a human-readable status.
    pub fn msg(&self) -> Option<&str> {
        self.meta.msg.as_deref()
    }

    /// What the callback carries, typed by family.
    pub fn payload(&self) -> &Payload {
        &self.payload
    }

    /// The music tracks (`data.data`); empty for other families and when the list is
    /// `[]`, `null` or absent.
    pub fn tracks(&self) -> &[Track] {
        match &self.payload {
            Payload::Music(music) => music.tracks(),
            _ => &[],
        }
    }

    /// The `data.error` text some music failures send instead of a track list.
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
        parse::from_slice_tolerant(&self.meta.raw).unwrap_or(serde_json::Value::Null)
    }
}
