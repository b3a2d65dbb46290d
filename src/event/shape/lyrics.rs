//! The lyrics shape (`/api/v1/lyrics`): `data.data` holds lyric variations, told from
//! tracks by their keys (`text`, `error_message`, `status`). `callbackType` is always
//! `complete`, even on failure; it is the stage.

use super::spec::{Keyed, Shape, read};
use crate::event::family::{ApiRoute, Family};
use crate::event::markers::Key;
use crate::event::payload::Payload;

/// The lyrics shape.
pub(crate) const LYRICS: Shape = Shape {
    name: "lyrics",
    family: Some(Family::Lyrics),
    route: ApiRoute::Classic,
    markers: &[Key::Items],
    detect: |clues| clues.found.has_item && clues.found.item_is_variation(),
    key: |clues, family| Ok(Keyed::by_callback_type(clues, family)),
    build: |_, data| Payload::Lyrics(read(data)).into(),
};
