//! The voice shape (sunoapi.org's voice validate / regenerate / generate): a step's
//! `data.status` (`wait_validating`, `processing_validate_fail`, `success`, `fail`), and
//! `validateInfo` or `voiceId`. The status is the stage; `fail` and
//! `processing_validate_fail` are failures whatever `code` says.

use super::spec::{Clues, Keyed, Shape, label_text, read};
use crate::event::error::{ParseError, ParseErrorKind};
use crate::event::family::{ApiRoute, Family};
use crate::event::markers::Key;
use crate::event::payload::Payload;

/// The voice shape.
pub(crate) const VOICE: Shape = Shape {
    name: "voice",
    family: Some(Family::Voice),
    route: ApiRoute::Classic,
    markers: &[Key::Status, Key::VoiceId, Key::ValidateInfo],
    // `status` must hold a label: `""`, `null` or a container names no shape.
    detect: |clues| {
        clues.status.is_some() || clues.has(Key::VoiceId) || clues.has(Key::ValidateInfo)
    },
    key,
    build: |_, data| Payload::Voice(read(data)).into(),
};

fn key(clues: &Clues<'_>, family: Family) -> Result<Keyed, ParseError> {
    let status = label_text(clues.status.cloned(), ParseErrorKind::BadStatus)?;
    let failed =
        clues.failed_by_code() || matches!(status.as_str(), "fail" | "processing_validate_fail");
    Ok(Keyed {
        family,
        stage: status,
        failed,
    })
}
