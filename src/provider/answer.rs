//! A task-details answer read into the provider's model: the task, its status, the
//! provider's error code and message, and what the answer carries for the family.
//!
//! Reading is as tolerant as for callbacks (numbers as strings, `null`, absent keys,
//! unknown fields); a status outside the family's vocabulary is an error.

use serde_json::{Map, Value};

use super::error::AnswerError;
use super::status::TaskStatus;
use crate::event::{ApiRoute, Family};

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
    /// A jobs-route answer (`/api/v1/jobs/recordInfo`), any model: its `data` as the
    /// provider wrote it (`model`, `state`, `resultJson`, `failCode`, …), which is also
    /// the `data` of the task's callback.
    Jobs {
        /// `data.model`: `ai-music-api/generate`, or another provider's model.
        model: String,
        /// `data` as the provider wrote it.
        data: Map<String, Value>,
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
            Self::Jobs { data, .. } => data
                .get("resultJson")
                .is_some_and(|result| !matches!(result, Value::Null) && result != ""),
        }
    }
}

/// One task-details answer, read.
///
/// ```
/// use suno_callback::Family;
/// use suno_callback::provider::{TaskAnswer, TaskPayload, TaskStatus};
///
/// let body = br#"{"code":200,"msg":"success","data":{"taskId":"t1","successFlag":"SUCCESS",
///     "response":{"audioWavUrl":"https://cdn.example.net/a.wav"}}}"#;
/// let answer = TaskAnswer::from_json(Family::Wav, body)?;
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
    route: ApiRoute,
    family: Family,
    task_id: String,
    status: TaskStatus,
    error_code: Option<i64>,
    error_message: Option<String>,
    msg: Option<String>,
    payload: TaskPayload,
}

impl TaskAnswer {
    /// Reads an answer of `family`'s endpoint on the classic route. The answer's own
    /// `code` must be `200`.
    ///
    /// # Errors
    ///
    /// The answer is not JSON, its `code` is not `200`, it lacks the task id or the
    /// status, its status is none of the family's, or `family` is
    /// [`Family::Unknown`] (no classic endpoint answers for it).
    pub fn from_json(family: Family, body: &[u8]) -> Result<Self, AnswerError> {
        if family == Family::Unknown {
            return Err(AnswerError::unknown_family());
        }
        let (root, data, task_id) = envelope(body)?;
        let status_value = match family {
            Family::Music | Family::Lyrics | Family::Voice => {
                data.get("status").or_else(|| data.get("successFlag"))
            }
            _ => data.get("successFlag").or_else(|| data.get("status")),
        };
        let status = TaskStatus::from_wire(family, status_value.unwrap_or(&Value::Null))?;
        Ok(Self {
            route: ApiRoute::Classic,
            family,
            task_id,
            status,
            error_code: data.get("errorCode").and_then(integer),
            error_message: data
                .get("errorMessage")
                .and_then(text)
                .filter(|m| !m.is_empty()),
            msg: root.get("msg").and_then(text),
            payload: payload(family, &data),
        })
    }

    /// Reads an answer of the jobs route's endpoint (`/api/v1/jobs/recordInfo`): the
    /// status from `data.state` (`waiting`, `queuing`, `generating` pending;
    /// `success`, `fail` final), the family from `data.model`
    /// ([`Family::from_model`]), the reason of a failure from `failCode` and
    /// `failMsg`.
    ///
    /// ```
    /// use suno_callback::{ApiRoute, Family};
    /// use suno_callback::provider::{TaskAnswer, TaskStatus};
    ///
    /// let body = br#"{"code":200,"msg":"success","data":{"taskId":"t1",
    ///     "model":"ai-music-api/convert-to-wav-format","state":"queuing","resultJson":""}}"#;
    /// let answer = TaskAnswer::from_jobs_json(body)?;
    /// assert_eq!(answer.route(), ApiRoute::Jobs);
    /// assert_eq!(answer.family(), Family::Wav);
    /// assert_eq!(answer.status(), &TaskStatus::Pending);
    /// # Ok::<(), suno_callback::provider::AnswerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The answer is not JSON, its `code` is not `200`, it lacks the task id, the
    /// model or the state, or its state is none of the five.
    pub fn from_jobs_json(body: &[u8]) -> Result<Self, AnswerError> {
        let (root, data, task_id) = envelope(body)?;
        let model = data
            .get("model")
            .and_then(text)
            .filter(|model| !model.is_empty())
            .ok_or(AnswerError::missing("model"))?;
        let family = Family::from_model(&model).unwrap_or(Family::Unknown);
        let status = TaskStatus::from_jobs_state(data.get("state").unwrap_or(&Value::Null))?;
        Ok(Self {
            route: ApiRoute::Jobs,
            family,
            task_id,
            status,
            error_code: data.get("failCode").and_then(integer),
            error_message: data.get("failMsg").and_then(text).filter(|m| !m.is_empty()),
            msg: root.get("msg").and_then(text),
            payload: TaskPayload::Jobs {
                model,
                data: data.clone(),
            },
        })
    }

    /// Which route's endpoint answered.
    pub fn route(&self) -> ApiRoute {
        self.route
    }
    /// The answer's own `msg` (`success` when the request succeeded).
    pub fn msg(&self) -> Option<&str> {
        self.msg.as_deref()
    }

    /// The family whose endpoint answered (on the jobs route: the model's family).
    pub fn family(&self) -> Family {
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
    /// `data.errorCode` (jobs route: `data.failCode`), when the provider gave one as
    /// an integer.
    pub fn error_code(&self) -> Option<i64> {
        self.error_code
    }
    /// `data.errorMessage` (jobs route: `data.failMsg`), when the provider gave one.
    pub fn error_message(&self) -> Option<&str> {
        self.error_message.as_deref()
    }
    /// What the answer carries.
    pub fn payload(&self) -> &TaskPayload {
        &self.payload
    }
}

/// A JSON object.
type Object = Map<String, Value>;

/// The answer's root, its `data` object and its task id, once its `code` is `200`.
fn envelope(body: &[u8]) -> Result<(Object, Object, String), AnswerError> {
    let root: Value = serde_json::from_slice(body).map_err(|e| AnswerError::json(&e))?;
    let Value::Object(mut root) = root else {
        return Err(AnswerError::missing("data"));
    };
    let code = root.get("code").and_then(integer);
    if code != Some(200) {
        let msg = root.get("msg").and_then(text).unwrap_or_default();
        return Err(AnswerError::refused(code.unwrap_or(0), &msg));
    }
    let Some(Value::Object(data)) = root.remove("data") else {
        return Err(AnswerError::missing("data"));
    };
    let task_id = data
        .get("taskId")
        .or_else(|| data.get("task_id"))
        .and_then(text)
        .filter(|id| !id.is_empty())
        .ok_or(AnswerError::missing("taskId"))?;
    Ok((root, data, task_id))
}

fn payload(family: Family, data: &Map<String, Value>) -> TaskPayload {
    let response = data.get("response").and_then(Value::as_object);
    let field = |name: &str| {
        response
            .and_then(|r| r.get(name))
            .or_else(|| data.get(name))
    };
    match family {
        Family::Music => TaskPayload::Music {
            tracks: objects(field("sunoData")),
        },
        Family::Lyrics => TaskPayload::Lyrics {
            items: objects(field("data")),
        },
        Family::Wav => TaskPayload::Wav {
            audio_wav_url: field("audioWavUrl").and_then(url),
        },
        Family::Separation => TaskPayload::Separation {
            stems: response.cloned().unwrap_or_default(),
        },
        Family::Midi => TaskPayload::Midi {
            midi: field("midiData")
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default(),
        },
        Family::Video => TaskPayload::Video {
            video_url: field("videoUrl")
                .or_else(|| field("video_url"))
                .and_then(url),
        },
        Family::Cover => TaskPayload::Cover {
            images: match field("images") {
                Some(Value::Array(images)) => images.iter().filter_map(url).collect(),
                _ => Vec::new(),
            },
        },
        // `from_json` refuses the unknown family before reading a payload.
        _ => TaskPayload::Voice {
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
