//! The MIDI shape (`/api/v1/midi/generate`): `data.instruments`, and `data.state`
//! (`complete`). No stages. Tried after the jobs shape, whose `data.state` comes with a
//! `data.model`.

use super::spec::{Keyed, Shape, read};
use crate::event::family::{ApiRoute, Family};
use crate::event::markers::Key;
use crate::event::payload::Payload;

/// The midi shape.
pub(crate) const MIDI: Shape = Shape {
    name: "midi",
    family: Some(Family::Midi),
    route: ApiRoute::Classic,
    markers: &[Key::Instruments, Key::State],
    detect: |clues| clues.has(Key::Instruments) || clues.has(Key::State),
    key: |clues, family| Ok(Keyed::stageless(clues, family)),
    build: |_, data| Payload::Midi(read(data)).into(),
};
