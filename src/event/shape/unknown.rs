//! No known shape: mostly a failure that carries only its task id, on the shared path.
//! `callbackType`, if any, is the stage; the payload is left to `raw_json()`.

use super::spec::{Keyed, Shape};
use crate::event::family::{ApiRoute, Family};
use crate::event::payload::Payload;

/// The last shape tried: it takes every body.
pub(crate) const UNKNOWN: Shape = Shape {
    name: "unknown",
    family: Some(Family::Unknown),
    route: ApiRoute::Classic,
    markers: &[],
    detect: |_| true,
    key: |clues, family| Ok(Keyed::by_callback_type(clues, family)),
    build: |_, _| Payload::Unknown.into(),
};
