//! The stage of a task a callback reports. A leaf module.

use std::fmt;

/// The stage of a task that a callback reports: `data.callbackType` for music and
/// lyrics, `data.status` for voice, `Other("")` for families without stages.
///
/// ```
/// use suno_callback::Stage;
///
/// assert_eq!(Stage::from_wire("first"), Stage::First);
/// assert_eq!(Stage::from_wire("remix"), Stage::Other("remix".into()));
/// assert_eq!(Stage::Other("remix".into()).as_str(), "remix");
/// ```
#[derive(Clone, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Stage {
    /// `text`: the lyrics or text are done.
    Text,
    /// `first`: the first track is done.
    First,
    /// `complete`: all tracks are done.
    Complete,
    /// `error`: the task failed.
    Error,
    /// Any other value, or `""` when the body has no `callbackType`.
    Other(String),
}

impl Stage {
    /// The stage for a `callbackType` value.
    pub fn from_wire(value: &str) -> Self {
        match value {
            "text" => Self::Text,
            "first" => Self::First,
            "complete" => Self::Complete,
            "error" => Self::Error,
            other => Self::Other(other.to_owned()),
        }
    }

    /// The `callbackType` value, as the sender wrote it.
    pub fn as_str(&self) -> &str {
        match self {
            Self::Text => "text",
            Self::First => "first",
            Self::Complete => "complete",
            Self::Error => "error",
            Self::Other(other) => other,
        }
    }
}

impl fmt::Display for Stage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
