//! The separation shape (`/api/v1/vocal-removal/generate`): stems in Kie's
//! `data.vocal_separation_info` or sunoapi.org's `data.vocal_removal_info`. No stages.

use super::spec::{Keyed, Shape, read};
use crate::event::family::{ApiRoute, Family};
use crate::event::markers::Key;
use crate::event::payload::Payload;

/// The separation shape.
pub(crate) const SEPARATION: Shape = Shape {
    name: "separation",
    family: Some(Family::Separation),
    route: ApiRoute::Classic,
    markers: &[Key::VocalSeparationInfo, Key::VocalRemovalInfo],
    detect: |clues| clues.has(Key::VocalSeparationInfo) || clues.has(Key::VocalRemovalInfo),
    key: |clues, family| Ok(Keyed::stageless(clues, family)),
    build: |_, data| Payload::Separation(read(data)).into(),
};
