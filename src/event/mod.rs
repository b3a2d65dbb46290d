//! The typed events: the envelope read before verification ([`envelope`]), and the
//! whole event built from a verified body ([`CallbackEvent`]).
//!
//! Parsing is strict only about what the pipeline cannot work without (a JSON object
//! with a `code` and a task id, a short printable `callbackType`) and tolerant of
//! everything else, because a body answered `400` three times is a song the sender
//! will never deliver again.
//!
//! The layout, leaves first (no module imports one that imports it back):
//! - `error` (why a body is refused), `family`, `stage`, `failure`, `time` (the date
//!   and time fields), `tolerant` (the tolerant JSON reading): leaves;
//! - `scan` (the one validating pass), `markers` (the members the envelope reads, by
//!   name), `lenient` (field readers), `track`, `payload`, `jobs` (the jobs route's
//!   metadata), `model` (its model → family table);
//! - `shape`: one file per envelope shape and the order they are tried in;
//! - `envelope` (stage 2), `build` (the typed event of a verified body), `callback`
//!   ([`CallbackEvent`]); `reference`, the serde-derived envelope the scan is held to.

mod build;
mod callback;
pub(crate) mod envelope;
mod error;
mod failure;
mod family;
mod jobs;
mod lenient;
mod markers;
mod model;
mod payload;
mod scan;
mod shape;
mod stage;
mod time;
mod tolerant;
mod track;

pub use callback::CallbackEvent;
pub(crate) use envelope::Envelope;
pub use error::ParseError;
pub use failure::FailureReason;
pub use family::{ApiRoute, Family, Outcome, UnknownFamily};
pub use jobs::JobsMeta;
pub use payload::{
    CoverPayload, Instrument, LyricsPayload, LyricsVariation, MidiPayload, MusicPayload, Note,
    Payload, SeparationPayload, Stem, VideoPayload, VoicePayload, VoiceStatus, WavPayload,
};
pub use stage::Stage;
pub use time::CreateTime;
pub use track::Track;
