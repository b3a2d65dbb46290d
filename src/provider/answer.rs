//! A task-details answer read into the provider's model: the task, its status, the
//! provider's error code and message, and what the answer carries for the family.
//!
//! Reading is as tolerant as for callbacks (numbers as strings, `null`, absent keys,
//! unknown fields); a status outside the family's vocabulary is an error.

use serde_json::{Map, Value};

use super::error::AnswerError;
use super::family::TaskFamily;
use super::status::TaskStatus;

/// What a task-details answer carries, by family (empty until the task produced it).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum TaskPayload {
    /// `data.response.sunoData[]`: the tracks, each a JSON object in camelCase.
    Music {
        /// The tracks as the provider wrote them.
        tracks: Vec<Map<String, Value>>,
    },
    /// `data.response.data[]`: the lyrics items (`text`, `title`, `status`, `errorMessage`).
    Lyrics {
        /// The items as the provider wrote them.
        items: Vec<Map<String, Value>>,
    },
    /// `data.response.audioWavUrl`.
    Wav {
        /// The WAV file.
        audio_wav_url: Option<String>,
    },
    /// `data.response`: the stem URLs (`vocalUrl`, `instrumentalUrl`, …).
    Separation {
        /// The stems object as the provider wrote it.
        stems: Map<String, Value>,
    },
    /// `data.midiData`: `state` and `instruments[]`.
    Midi {
        /// The MIDI object as the provider wrote it.
        midi: Map<String, Value>,
    },
    /// `data.response.videoUrl`.
    Video {
        /// The MP4 file.
        video_url: Option<String>,
    },
    /// `data.response.images[]`.
    Cover {
        /// The image URLs.
        images: Vec<String>,
    },
    /// `data.voiceId`, `data.validateInfo`.
    Voice {
        /// The created voice.
        voice_id: Option<String>,
        /// The phrase to read for validation.
        validate_info: Option<String>,
    },
}

impl TaskPayload {
    /// Whether it carries the family's result (tracks, a URL, images…).
    pub fn has_result(&self) -> bool {
        match self {
            Self::Music { tracks } => !tracks.is_empty(),
            Self::Lyrics { items } => !items.is_empty(),
            Self::Wav { audio_wav_url: url } | Self::Video { video_url: url } => url.is_some(),
            Self::Separation { stems } => stems
                .values()
                .any(|value| value.as_str().is_some_and(|url| !url.is_empty())),
            Self::Midi { midi } => midi.contains_key("instruments"),
            Self::Cover { images } => !images.is_empty(),
            Self::Voice { voice_id, .. } => voice_id.is_some(),
        }
    }
}

/// One task-details answer, read.
///
/// ```
/// use suno_callback::provider::{TaskAnswer, TaskFamily, TaskPayload, TaskStatus};
///
/// let body = br#"{"code":200,"msg":"success","data":{"taskId":"t1","successFlag":"SUCCESS",
///     "response":{"audioWavUrl":"https://cdn.example.net/a.wav"}}}"#;
/// let answer = TaskAnswer::from_json(TaskFamily::Wav, body)?;
/// assert_eq!(answer.task_id(), "t1");
/// assert_eq!(answer.status(), &TaskStatus::Success);
/// assert_eq!(
///     answer.payload(),
///     &TaskPayload::Wav { audio_wav_url: Some("https://cdn.example.net/a.wav".into()) }
/// );
/// # Ok::<(), suno_callback::provider::AnswerError>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct TaskAnswer {
    family: TaskFamily,
    task_id: String,
    status: TaskStatus,
    error_code: Option<i64>,
    error_message: Option<String>,
    payload: TaskPayload,
}

impl TaskAnswer {
    /// Reads an answer of `family`'s endpoint. The answer's own `code` must be `200`.
    pub fn from_json(family: TaskFamily, body: &[u8]) -> Result<Self, AnswerError> {
        let root: Value = serde_json::from_slice(body).map_err(|e| AnswerError::json(&e))?;
        let Value::Object(root) = root else {
            return Err(AnswerError::missing("data"));
        };
        let code = root.get("code").and_then(integer);
        if code != Some(200) {
            let msg = root.get("msg").and_then(text).unwrap_or_default();
            return Err(AnswerError::refused(code.unwrap_or(0), &msg));
        }
        let Some(Value::Object(data)) = root.get("data") else {
            return Err(AnswerError::missing("data"));
        };
        let task_id = data
            .get("taskId")
            .or_else(|| data.get("task_id"))
            .and_then(text)
            .filter(|id| !id.is_empty())
            .ok_or(AnswerError::missing("taskId"))?;
        let status_value = match family {
            TaskFamily::Music | TaskFamily::Lyrics | TaskFamily::Voice => {
                data.get("status").or_else(|| data.get("successFlag"))
            }
            _ => data.get("successFlag").or_else(|| data.get("status")),
        };
        let status = TaskStatus::from_wire(family, status_value.unwrap_or(&Value::Null))?;
        Ok(Self {
            family,
            task_id,
            status,
            error_code: data.get("errorCode").and_then(integer),
            error_message: data
                .get("errorMessage")
                .and_then(text)
                .filter(|m| !m.is_empty()),
            payload: payload(family, data),
        })
    }

    /// The family whose endpoint answered.
    pub fn family(&self) -> TaskFamily {
        self.family
    }
    /// The task id (`data.taskId`).
    pub fn task_id(&self) -> &str {
        &self.task_id
    }
    /// The task's status.
    pub fn status(&self) -> &TaskStatus {
        &self.status
    }
    /// `data.errorCode`, when the provider gave one.
    pub fn error_code(&self) -> Option<i64> {
        self.error_code
    }
    /// `data.errorMessage`, when the provider gave one.
    pub fn error_message(&self) -> Option<&str> {
        self.error_message.as_deref()
    }
    /// What the answer carries.
    pub fn payload(&self) -> &TaskPayload {
        &self.payload
    }
}

fn payload(family: TaskFamily, data: &Map<String, Value>) -> TaskPayload {
    let response = data.get("response").and_then(Value::as_object);
    let field = |name: &str| {
        response
            .and_then(|r| r.get(name))
            .or_else(|| data.get(name))
    };
    match family {
        TaskFamily::Music => TaskPayload::Music {
            tracks: objects(field("sunoData")),
        },
        TaskFamily::Lyrics => TaskPayload::Lyrics {
            items: objects(field("data")),
        },
        TaskFamily::Wav => TaskPayload::Wav {
            audio_wav_url: field("audioWavUrl").and_then(url),
        },
        TaskFamily::Separation => TaskPayload::Separation {
            stems: response.cloned().unwrap_or_default(),
        },
        TaskFamily::Midi => TaskPayload::Midi {
            midi: field("midiData")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        },
        TaskFamily::Video => TaskPayload::Video {
            video_url: field("videoUrl")
                .or_else(|| field("video_url"))
                .and_then(url),
        },
        TaskFamily::Cover => TaskPayload::Cover {
            images: match field("images") {
                Some(Value::Array(images)) => images.iter().filter_map(url).collect(),
                _ => Vec::new(),
            },
        },
        TaskFamily::Voice => TaskPayload::Voice {
            voice_id: field("voiceId").and_then(url),
            validate_info: field("validateInfo").and_then(url),
        },
    }
}

/// The objects of a JSON array; anything else is empty.
fn objects(value: Option<&Value>) -> Vec<Map<String, Value>> {
    match value {
        Some(Value::Array(items)) => items
            .iter()
            .filter_map(|item| item.as_object().cloned())
            .collect(),
        _ => Vec::new(),
    }
}

/// A non-empty string.
fn url(value: &Value) -> Option<String> {
    value.as_str().filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A string, or a number written as one.
pub(crate) fn text(value: &Value) -> Option<String> {
    match value {
        Value::String(text) => Some(text.clone()),
        Value::Number(number) => Some(number.to_string()),
        _ => None,
    }
}

/// An integer, or one written as a string.
pub(crate) fn integer(value: &Value) -> Option<i64> {
    match value {
        Value::Number(number) => number.as_i64(),
        Value::String(text) => text.trim().parse().ok(),
        _ => None,
    }
}
