//! The cover shape (`/api/v1/suno/cover/generate`): images at `data.images`. No
//! stages.

use super::spec::{Keyed, Shape, read};
use crate::event::family::{ApiRoute, Family};
use crate::event::markers::Key;
use crate::event::payload::Payload;

/// The cover shape.
pub(crate) const COVER: Shape = Shape {
    name: "cover",
    family: Some(Family::Cover),
    route: ApiRoute::Classic,
    markers: &[Key::Images],
    detect: |clues| clues.has(Key::Images),
    key: |clues, family| Ok(Keyed::stageless(clues, family)),
    build: |_, data| Payload::Cover(read(data)).into(),
};
