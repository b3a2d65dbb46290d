//! Which kind of task a callback reports on, and whether it reports a success. A leaf
//! module: the store, the dispatcher and the service all use these two types.

use std::fmt;
use std::str::FromStr;

/// The family of API call a callback belongs to: each family has its own body shape.
///
/// [`Family::Unknown`] is the family of a body whose shape names none of the others:
/// mostly a failure that carries only its task id, delivered on the shared path.
///
/// ```
/// use suno_callback::Family;
///
/// assert_eq!(Family::Wav.as_str(), "wav");
/// assert_eq!(Family::from_name("separation"), Some(Family::Separation));
/// assert_eq!(Family::from_path("/callbacks/suno/midi"), Some(Family::Midi));
/// assert_eq!(Family::from_path("/callbacks/suno"), None);
/// assert_eq!(Family::ALL.len(), 8);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum Family {
    /// Generate, extend, upload-cover, upload-extend, add-instrumental, add-vocals,
    /// replace-section, mashup: `callbackType` `text`, `first`, `complete`, `error`.
    Music,
    /// `/api/v1/lyrics`: lyric variations (`callbackType` always `complete`).
    Lyrics,
    /// `/api/v1/wav/generate`: one WAV file.
    Wav,
    /// `/api/v1/vocal-removal/generate`: vocal and instrument stems.
    Separation,
    /// `/api/v1/midi/generate`: instruments and their notes.
    Midi,
    /// `/api/v1/mp4/generate`: one video.
    Video,
    /// `/api/v1/suno/cover/generate`: cover images.
    Cover,
    /// Voice validate, regenerate and generate (sunoapi.org): a status per step.
    Voice,
    /// No known family: a failure that carries only its task id (on the shared path),
    /// or a body of no known shape.
    Unknown,
}

impl Family {
    /// Every known family (all but [`Family::Unknown`]), in declaration order.
    pub const ALL: [Family; 8] = [
        Family::Music,
        Family::Lyrics,
        Family::Wav,
        Family::Separation,
        Family::Midi,
        Family::Video,
        Family::Cover,
        Family::Voice,
    ];

    /// The lowercase name, used in paths (`/callbacks/suno/wav`) and dedup keys.
    pub const fn as_str(self) -> &'static str {
        match self {
            Family::Music => "music",
            Family::Lyrics => "lyrics",
            Family::Wav => "wav",
            Family::Separation => "separation",
            Family::Midi => "midi",
            Family::Video => "video",
            Family::Cover => "cover",
            Family::Voice => "voice",
            Family::Unknown => "unknown",
        }
    }

    /// The known family named `name` (as [`as_str`](Self::as_str) writes it).
    pub fn from_name(name: &str) -> Option<Family> {
        Family::ALL
            .into_iter()
            .find(|family| family.as_str() == name)
    }

    /// The family named by the last segment of a request path, if it names one:
    /// `/callbacks/suno/wav` is [`Family::Wav`], `/callbacks/suno` is none.
    pub fn from_path(path: &str) -> Option<Family> {
        let path = path.strip_suffix('/').unwrap_or(path);
        path.rsplit('/').next().and_then(Family::from_name)
    }
}

impl fmt::Display for Family {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A name that is no known [`Family`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnknownFamily(String);

impl fmt::Display for UnknownFamily {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "unknown task family {:?}", self.0)
    }
}

impl std::error::Error for UnknownFamily {}

impl FromStr for Family {
    type Err = UnknownFamily;

    /// Parses a known family's name, case and surrounding space ignored;
    /// `vocal-removal`, `mp4` and `cover_images` are accepted too. `unknown` is not a
    /// name to parse.
    ///
    /// ```
    /// use suno_callback::Family;
    ///
    /// assert_eq!("wav".parse::<Family>()?, Family::Wav);
    /// assert_eq!("MP4".parse::<Family>()?, Family::Video);
    /// assert!("sora".parse::<Family>().is_err());
    /// # Ok::<(), suno_callback::event::UnknownFamily>(())
    /// ```
    fn from_str(name: &str) -> Result<Self, Self::Err> {
        let lower = name.trim().to_ascii_lowercase();
        let family = match lower.as_str() {
            "vocal-removal" | "vocal_removal" => Family::Separation,
            "mp4" => Family::Video,
            "cover_images" => Family::Cover,
            other => Family::from_name(other).ok_or_else(|| {
                let shown: String = name.chars().take(32).collect();
                UnknownFamily(shown)
            })?,
        };
        Ok(family)
    }
}

/// Whether a callback reports a success or a failure. A failure and a success of one
/// task and stage never share a dedup key.
///
/// ```
/// use suno_callback::Outcome;
///
/// assert_eq!(Outcome::Failure.as_str(), "failure");
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Outcome {
    /// `code` 200 (and not `callbackType` `error`, nor a failed voice status).
    Success,
    /// Any other `code`, `callbackType` `error`, or voice status `fail` or
    /// `processing_validate_fail`.
    Failure,
}

impl Outcome {
    /// `"success"` or `"failure"`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
        }
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Which of the provider's APIs a task was created through, and so what shape its
/// callbacks and task details have.
///
/// ```
/// use suno_callback::ApiRoute;
///
/// assert_eq!(ApiRoute::Jobs.as_str(), "jobs");
/// assert_eq!(ApiRoute::from_name("classic"), Some(ApiRoute::Classic));
/// assert_eq!(ApiRoute::default(), ApiRoute::Classic);
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, PartialOrd, Ord)]
#[non_exhaustive]
pub enum ApiRoute {
    /// One endpoint per family (`/api/v1/generate`, `/api/v1/wav/generate`, …), the
    /// provider's "old version" pages: callbacks carry `data.callbackType` or the
    /// family's own fields.
    #[default]
    Classic,
    /// The generic jobs route (`POST /api/v1/jobs/createTask` with a `model` name):
    /// callbacks carry `data.model`, `data.state` and `data.resultJson`.
    Jobs,
}

impl ApiRoute {
    /// `"classic"` or `"jobs"`, as registries store it.
    pub const fn as_str(self) -> &'static str {
        match self {
            ApiRoute::Classic => "classic",
            ApiRoute::Jobs => "jobs",
        }
    }

    /// The route named `name` (as [`as_str`](Self::as_str) writes it).
    pub fn from_name(name: &str) -> Option<ApiRoute> {
        match name {
            "classic" => Some(ApiRoute::Classic),
            "jobs" => Some(ApiRoute::Jobs),
            _ => None,
        }
    }
}

impl fmt::Display for ApiRoute {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
