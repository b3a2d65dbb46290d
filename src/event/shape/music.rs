//! The music shape (generate, extend, upload-cover, upload-extend, add-instrumental,
//! add-vocals, replace-section, mashup): `data.data` holds tracks, `callbackType`
//! (`text`, `first`, `complete`, `error`) is the stage.
//!
//! A body without tracks is music when it has a `callbackType`, except a failure typed
//! `complete`: a lyrics failure keeps `complete` and has no items, and without them it
//! cannot be told from a music failure (it is then of no known shape).

use super::spec::{Keyed, Shape, read};
use crate::event::family::{ApiRoute, Family};
use crate::event::markers::Key;
use crate::event::payload::{MusicPayload, Payload};

/// The music shape.
pub(crate) const MUSIC: Shape = Shape {
    name: "music",
    family: Some(Family::Music),
    route: ApiRoute::Classic,
    markers: &[Key::Items, Key::CallbackType],
    detect: |clues| {
        clues.found.has_item
            || !(clues.callback_type.is_empty()
                || (clues.callback_type == "complete" && clues.failed_by_code()))
    },
    key: |clues, family| Ok(Keyed::by_callback_type(clues, family)),
    build: |_, data| Payload::Music(payload(data)).into(),
};

/// The music payload of a `data` object: read with the scanner when it is UTF-8 and the
/// scan can decide (the common case), else by serde as every other payload.
pub(crate) fn payload(data: Option<&[u8]>) -> MusicPayload {
    let scanned = data
        .and_then(|data| std::str::from_utf8(data).ok())
        .and_then(MusicPayload::scan);
    scanned.unwrap_or_else(|| read(data))
}
