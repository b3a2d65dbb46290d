//! The envelope shapes, one file each, and the order they are tried in.
//!
//! A shape says which marker keys of `data` name it, how it keys a callback (family,
//! stage, outcome) before verification, and how it builds the payload after. The
//! envelope tries [`SHAPES`] in order and takes the first that detects the body; when
//! the request's path names a family, that family's shape is taken instead, except
//! that the jobs route's shape still comes first (its body names its own family).
//! Adding a shape is one file and one line of [`SHAPES`].

mod cover;
mod jobs;
mod lyrics;
mod midi;
mod music;
mod separation;
pub(crate) mod spec;
mod unknown;
mod video;
mod voice;
mod wav;

use crate::event::family::{ApiRoute, Family};
pub(crate) use spec::{Built, Clues, Shape};

/// Every shape, in the order they are tried: the jobs route first (its `data.state`
/// would otherwise name MIDI), then the families whose marker keys are their own, then
/// those told apart by `data.data` and `callbackType`, and [`unknown`] last, which
/// takes every body.
pub(crate) const SHAPES: [&Shape; 10] = [
    &jobs::JOBS,
    &wav::WAV,
    &separation::SEPARATION,
    &video::VIDEO,
    &cover::COVER,
    &midi::MIDI,
    &voice::VOICE,
    &lyrics::LYRICS,
    &music::MUSIC,
    &unknown::UNKNOWN,
];

/// The shape of a body: `path` is the family the request's path names, if any.
pub(crate) fn choose(clues: &Clues<'_>, path: Option<Family>) -> &'static Shape {
    if (jobs::JOBS.detect)(clues) {
        return &jobs::JOBS;
    }
    match path {
        Some(family) => of(ApiRoute::Classic, family),
        None => SHAPES
            .into_iter()
            .find(|shape| (shape.detect)(clues))
            .unwrap_or(&unknown::UNKNOWN),
    }
}

/// The shape that builds the payload of a callback of `route` and `family`.
pub(crate) fn of(route: ApiRoute, family: Family) -> &'static Shape {
    if route == ApiRoute::Jobs {
        return &jobs::JOBS;
    }
    SHAPES
        .into_iter()
        .find(|shape| shape.route == route && shape.family == Some(family))
        .unwrap_or(&unknown::UNKNOWN)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The list, printed: `cargo test --lib shape -- --nocapture`.
    #[test]
    fn the_shapes_are_tried_in_one_printed_order() {
        let listed: Vec<String> = SHAPES
            .iter()
            .map(|shape| {
                let markers: Vec<_> = shape.markers.iter().map(|key| key.key()).collect();
                let family = shape.family.map_or("(from model)", Family::as_str);
                format!(
                    "{} {} {} [{}]",
                    shape.name,
                    shape.route,
                    family,
                    markers.join(", ")
                )
            })
            .collect();
        for line in &listed {
            println!("{line}");
        }
        assert_eq!(
            listed,
            [
                "jobs jobs (from model) [model, state]",
                "wav classic wav [audioWavUrl]",
                "separation classic separation [vocal_separation_info, vocal_removal_info]",
                "video classic video [video_url]",
                "cover classic cover [images]",
                "midi classic midi [instruments, state]",
                "voice classic voice [status, voiceId, validateInfo]",
                "lyrics classic lyrics [data]",
                "music classic music [data, callbackType]",
                "unknown classic unknown []",
            ]
        );
        // Every family has its classic shape, found by `of`.
        for family in Family::ALL.into_iter().chain([Family::Unknown]) {
            assert_eq!(of(ApiRoute::Classic, family).family, Some(family));
        }
        assert_eq!(of(ApiRoute::Jobs, Family::Wav).name, "jobs");
    }
}
