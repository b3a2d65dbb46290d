//! The task families the provider's task-details endpoints know, and the path of each.

use std::fmt;
use std::str::FromStr;

use crate::event::Family;

/// A family of tasks: which task-details endpoint answers for it. The callback
/// [`Family`] less its `Unknown`: each maps to the other one to one.
///
/// ```
/// use suno_callback::provider::TaskFamily;
///
/// let family: TaskFamily = "wav".parse()?;
/// assert_eq!(family, TaskFamily::Wav);
/// assert_eq!(family.record_info_path(), "/api/v1/wav/record-info");
/// assert_eq!(family.as_str(), "wav");
/// # Ok::<(), suno_callback::provider::UnknownFamily>(())
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TaskFamily {
    /// Music generation, extension, covers, added vocals or instrumentals, mashups.
    Music,
    /// Lyrics generation.
    Lyrics,
    /// WAV conversion.
    Wav,
    /// Vocal removal and stem separation.
    Separation,
    /// MIDI extraction.
    Midi,
    /// Music video generation.
    Video,
    /// Cover image generation.
    Cover,
    /// Voice validation and generation (sunoapi.org).
    Voice,
}

impl TaskFamily {
    /// Every family, in a fixed order.
    pub const ALL: [TaskFamily; 8] = [
        Self::Music,
        Self::Lyrics,
        Self::Wav,
        Self::Separation,
        Self::Midi,
        Self::Video,
        Self::Cover,
        Self::Voice,
    ];

    /// The family's name: `music`, `lyrics`, `wav`, `separation`, `midi`, `video`,
    /// `cover`, `voice`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Music => "music",
            Self::Lyrics => "lyrics",
            Self::Wav => "wav",
            Self::Separation => "separation",
            Self::Midi => "midi",
            Self::Video => "video",
            Self::Cover => "cover",
            Self::Voice => "voice",
        }
    }

    /// The path of the family's task-details endpoint (`GET …?taskId=`).
    pub fn record_info_path(self) -> &'static str {
        match self {
            Self::Music => "/api/v1/generate/record-info",
            Self::Lyrics => "/api/v1/lyrics/record-info",
            Self::Wav => "/api/v1/wav/record-info",
            Self::Separation => "/api/v1/vocal-removal/record-info",
            Self::Midi => "/api/v1/midi/record-info",
            Self::Video => "/api/v1/mp4/record-info",
            Self::Cover => "/api/v1/suno/cover/record-info",
            Self::Voice => "/api/v1/voice/record-info",
        }
    }
}

impl TaskFamily {
    /// The task family of a callback [`Family`]; `None` for [`Family::Unknown`], whose
    /// endpoint nobody can tell.
    ///
    /// ```
    /// use suno_callback::Family;
    /// use suno_callback::provider::TaskFamily;
    ///
    /// assert_eq!(TaskFamily::from_family(Family::Wav), Some(TaskFamily::Wav));
    /// assert_eq!(TaskFamily::from_family(Family::Unknown), None);
    /// assert_eq!(Family::from(TaskFamily::Midi), Family::Midi);
    /// ```
    pub fn from_family(family: Family) -> Option<Self> {
        Self::ALL
            .into_iter()
            .find(|task_family| Family::from(*task_family) == family)
    }
}

impl From<TaskFamily> for Family {
    fn from(family: TaskFamily) -> Self {
        match family {
            TaskFamily::Music => Family::Music,
            TaskFamily::Lyrics => Family::Lyrics,
            TaskFamily::Wav => Family::Wav,
            TaskFamily::Separation => Family::Separation,
            TaskFamily::Midi => Family::Midi,
            TaskFamily::Video => Family::Video,
            TaskFamily::Cover => Family::Cover,
            TaskFamily::Voice => Family::Voice,
        }
    }
}

impl fmt::Display for TaskFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no [`TaskFamily`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFamily(String);

impl fmt::Display for UnknownFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown task family {:?}", self.0)
    }
}

impl std::error::Error for UnknownFamily {}

impl FromStr for TaskFamily {
    type Err = UnknownFamily;

    /// Parses a family name; `cover_images`, `vocal-removal` and `mp4` are accepted too.
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let family = match name.trim().to_ascii_lowercase().as_str() {
            "music" => Self::Music,
            "lyrics" => Self::Lyrics,
            "wav" => Self::Wav,
            "separation" | "vocal-removal" | "vocal_removal" => Self::Separation,
            "midi" => Self::Midi,
            "video" | "mp4" => Self::Video,
            "cover" | "cover_images" => Self::Cover,
            "voice" => Self::Voice,
            _ => {
                let shown: String = name.chars().take(32).collect();
                return Err(UnknownFamily(shown));
            }
        };
        Ok(family)
    }
}
