//! The wav shape (`/api/v1/wav/generate`): one WAV file at `data.audioWavUrl`
//! (`null` on failure). No stages.

use super::spec::{Keyed, Shape, read};
use crate::event::family::{ApiRoute, Family};
use crate::event::markers::Key;
use crate::event::payload::Payload;

/// The wav shape.
pub(crate) const WAV: Shape = Shape {
    name: "wav",
    family: Some(Family::Wav),
    route: ApiRoute::Classic,
    markers: &[Key::AudioWavUrl],
    detect: |clues| clues.has(Key::AudioWavUrl),
    key: |clues, family| Ok(Keyed::stageless(clues, family)),
    build: |_, data| Payload::Wav(read(data)).into(),
};
