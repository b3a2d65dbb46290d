//! The video shape (`/api/v1/mp4/generate`): one MP4 at `data.video_url`. No stages.

use super::spec::{Keyed, Shape, read};
use crate::event::family::{ApiRoute, Family};
use crate::event::markers::Key;
use crate::event::payload::Payload;

/// The video shape.
pub(crate) const VIDEO: Shape = Shape {
    name: "video",
    family: Some(Family::Video),
    route: ApiRoute::Classic,
    markers: &[Key::VideoUrl],
    detect: |clues| clues.has(Key::VideoUrl),
    key: |clues, family| Ok(Keyed::stageless(clues, family)),
    build: |_, data| Payload::Video(read(data)).into(),
};
