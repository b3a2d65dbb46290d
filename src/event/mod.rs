//! Stage 2 of the pipeline: the typed events, and parsing a callback body into one.
//!
//! [`CallbackEvent::from_json`] is the whole stage. It is strict only about what the
//! pipeline cannot work without (a JSON object with a `code` and a task id) and
//! tolerant of everything else, because a body answered `400` three times is a song
//! the sender will never deliver again.

mod failure;
mod lenient;
mod parse;
mod track;

use std::fmt;

use bytes::Bytes;

pub use failure::FailureReason;
pub use parse::ParseError;
pub use track::{CreateTime, Track};

/// The stage of a task that a callback reports (`data.callbackType`).
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

/// What every event carries, whatever its stage.
#[derive(Clone)]
struct Meta {
    task_id: String,
    stage: Stage,
    code: i64,
    msg: Option<String>,
    raw: Bytes,
}

impl fmt::Debug for Meta {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Meta")
            .field("task_id", &self.task_id)
            .field("stage", &self.stage)
            .field("code", &self.code)
            .field("msg", &self.msg)
            .field("raw_len", &self.raw.len())
            .finish()
    }
}

/// Accessors that [`StageEvent`] and [`FailureEvent`] share.
macro_rules! shared_accessors {
    () => {
        /// The task this callback reports on (`data.task_id`).
        pub fn task_id(&self) -> &str {
            &self.meta.task_id
        }
        /// The stage as the sender named it (`data.callbackType`).
        pub fn stage(&self) -> &Stage {
            &self.meta.stage
        }
        /// The callback's `code`: `200` on success.
        pub fn code(&self) -> i64 {
            self.meta.code
        }
        /// The callback's `msg`, a human-readable status.
        pub fn msg(&self) -> Option<&str> {
            self.meta.msg.as_deref()
        }
        /// The tracks in `data.data`; empty when the list is `[]`, `null` or absent.
        pub fn tracks(&self) -> &[Track] {
            &self.tracks
        }
        /// The body exactly as received.
        pub fn raw_body(&self) -> &Bytes {
            &self.meta.raw
        }
        /// The body as a JSON value, for fields this crate does not model. It is parsed
        /// again on each call; keep the value if you need it more than once.
        pub fn raw_json(&self) -> serde_json::Value {
            parse::from_slice_tolerant(&self.meta.raw).unwrap_or(serde_json::Value::Null)
        }
    };
}

/// A successful `text`, `first` or `complete` callback, or one with a `callbackType`
/// this crate does not know.
///
/// ```
/// use suno_callback::{CallbackEvent, Stage};
///
/// let body = r#"{"code":200,"msg":"ok","data":{"callbackType":"first","task_id":"t1",
///     "data":[{"id":"a","audio_url":"https://cdn.example.net/a.mp3"}]}}"#;
/// let CallbackEvent::First(event) = CallbackEvent::from_json(body)? else { unreachable!() };
/// assert_eq!(event.task_id(), "t1");
/// assert_eq!(event.stage(), &Stage::First);
/// assert_eq!(event.tracks()[0].audio_url(), Some("https://cdn.example.net/a.mp3"));
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
#[derive(Clone, Debug)]
pub struct StageEvent {
    meta: Meta,
    tracks: Vec<Track>,
}

impl StageEvent {
    shared_accessors!();
}

/// A failed task: `code` other than `200`, or `callbackType` `error`.
///
/// ```
/// use suno_callback::{CallbackEvent, FailureReason};
///
/// let body = r#"{"code":531,"msg":"refunded","data":{"callbackType":"error","task_id":"t1"}}"#;
/// let CallbackEvent::Failure(event) = CallbackEvent::from_json(body)? else { unreachable!() };
/// assert_eq!(event.reason(), FailureReason::FailedCreditsRefunded);
/// assert_eq!(event.msg(), Some("refunded"));
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
#[derive(Clone, Debug)]
pub struct FailureEvent {
    meta: Meta,
    tracks: Vec<Track>,
    error: Option<String>,
}

impl FailureEvent {
    shared_accessors!();

    /// The documented reason for [`code`](Self::code).
    pub fn reason(&self) -> FailureReason {
        FailureReason::from_code(self.meta.code)
    }

    /// The `data.error` text some pages send instead of a track list.
    pub fn error_detail(&self) -> Option<&str> {
        self.error.as_deref()
    }
}

/// One parsed callback, by kind. Success is decided by `code == 200` first: any other
/// code is a [`Failure`](CallbackEvent::Failure) whatever its `callbackType`.
///
/// ```
/// use suno_callback::CallbackEvent;
///
/// let body = r#"{"code":200,"msg":"ok","data":{"callbackType":"complete","task_id":"t1","data":[]}}"#;
/// let event = CallbackEvent::from_json(body)?;
/// assert!(matches!(event, CallbackEvent::Complete(_)));
/// assert_eq!(event.task_id(), "t1");
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
#[derive(Clone, Debug)]
#[non_exhaustive]
pub enum CallbackEvent {
    /// `text`: lyrics or text done.
    Text(StageEvent),
    /// `first`: the first track done.
    First(StageEvent),
    /// `complete`: all tracks done.
    Complete(StageEvent),
    /// The task failed.
    Failure(FailureEvent),
    /// A successful callback with a `callbackType` this crate does not know (or none).
    Unknown(StageEvent),
}

impl CallbackEvent {
    /// Parses a callback body. See [`ParseError`] for what is refused.
    pub fn from_json(body: impl Into<Bytes>) -> Result<Self, ParseError> {
        parse::parse(body.into())
    }

    fn meta(&self) -> &Meta {
        match self {
            Self::Text(e) | Self::First(e) | Self::Complete(e) | Self::Unknown(e) => &e.meta,
            Self::Failure(e) => &e.meta,
        }
    }

    /// The task this callback reports on.
    pub fn task_id(&self) -> &str {
        &self.meta().task_id
    }

    /// The stage as the sender named it (`data.callbackType`).
    pub fn stage(&self) -> &Stage {
        &self.meta().stage
    }

    /// The callback's `code`.
    pub fn code(&self) -> i64 {
        self.meta().code
    }

    /// The callback's `msg`.
    pub fn msg(&self) -> Option<&str> {
        self.meta().msg.as_deref()
    }

    /// The body exactly as received.
    pub fn raw_body(&self) -> &Bytes {
        &self.meta().raw
    }

    /// The body as a JSON value (parsed again on each call).
    pub fn raw_json(&self) -> serde_json::Value {
        parse::from_slice_tolerant(&self.meta().raw).unwrap_or(serde_json::Value::Null)
    }

    /// Whether this is a [`Failure`](CallbackEvent::Failure).
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failure(_))
    }
}
