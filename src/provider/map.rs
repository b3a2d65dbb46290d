//! The one place that maps a task-details answer to the crate's callback events: an
//! answer becomes the body the sender would have posted for it (a *synthetic
//! callback*), so [`CallbackEvent::from_json`] of that body yields the same typed event,
//! and the same dedup key, as the callback itself.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::answer::{TaskAnswer, TaskPayload};
use super::error::AnswerError;
use super::family::TaskFamily;
use super::status::TaskStatus;
use crate::event::{CallbackEvent, ParseError};

/// Whether a task succeeded or failed, as far as an event tells.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The stage or the task succeeded.
    Success,
    /// The task failed.
    Failure,
}

/// An answer mapped to the callback the sender would have posted for it.
///
/// ```
/// use suno_callback::CallbackEvent;
/// use suno_callback::provider::{Outcome, SyntheticCallback, TaskAnswer, TaskFamily};
///
/// let body = br#"{"code":200,"data":{"taskId":"t1","successFlag":"SUCCESS",
///     "response":{"videoUrl":"https://cdn.example.net/v.mp4"}}}"#;
/// let answer = TaskAnswer::from_json(TaskFamily::Video, body)?;
/// let synthetic = SyntheticCallback::from_answer(&answer)?.expect("final");
/// assert_eq!(synthetic.outcome(), Outcome::Success);
/// let event = synthetic.to_event()?;
/// assert_eq!(event.task_id(), "t1");
/// assert_eq!(event.raw_json()["data"]["video_url"], "https://cdn.example.net/v.mp4");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticCallback {
    task_id: String,
    family: TaskFamily,
    stage: String,
    outcome: Outcome,
    code: i64,
    message: Option<String>,
    body: Bytes,
}

impl SyntheticCallback {
    /// Maps an answer. `Ok(None)` while there is nothing to deliver (pending); an error
    /// when the answer says the task is done but what it carries cannot be the event (a
    /// music `SUCCESS` without tracks…).
    pub fn from_answer(answer: &TaskAnswer) -> Result<Option<Self>, AnswerError> {
        let family = answer.family();
        let succeeded = match answer.status() {
            TaskStatus::Pending => return Ok(None),
            TaskStatus::Success => true,
            TaskStatus::Failed(_) => false,
            // The callback could not be delivered: the answer's result decides.
            TaskStatus::CallbackException => answer.payload().has_result(),
            TaskStatus::Text | TaskStatus::First | TaskStatus::Step(_) => {
                return Ok(Some(step(answer)));
            }
        };
        if succeeded {
            success(answer).map(Some)
        } else {
            Ok(Some(failure(answer, family)))
        }
    }

    /// The task id.
    pub fn task_id(&self) -> &str {
        &self.task_id
    }
    /// The family whose endpoint answered.
    pub fn family(&self) -> TaskFamily {
        self.family
    }
    /// The stage: `text`, `first`, `complete` or `error` for music; `complete` or
    /// `error` for the other families; a voice step's word (`wait_validating`).
    pub fn stage(&self) -> &str {
        &self.stage
    }
    /// Success or failure.
    pub fn outcome(&self) -> Outcome {
        self.outcome
    }
    /// The body's `code`: `200` on success, the provider's error code (or `500` when it
    /// gave none; `400` for flagged words) on failure.
    pub fn code(&self) -> i64 {
        self.code
    }
    /// The provider's error message, on failure.
    pub fn message(&self) -> Option<&str> {
        self.message.as_deref()
    }
    /// The callback body, in the shape the sender posts for this family.
    pub fn body(&self) -> &Bytes {
        &self.body
    }
    /// The body parsed as a callback.
    pub fn to_event(&self) -> Result<CallbackEvent, ParseError> {
        CallbackEvent::from_json(self.body.clone())
    }
    /// Whether nothing more will happen to the task after this event.
    pub fn is_final(&self) -> bool {
        self.outcome == Outcome::Failure || self.stage == "complete"
    }
}

/// The callback's task id key: most families write `task_id`, cover, voice and midi
/// write `taskId`.
fn task_key(family: TaskFamily) -> &'static str {
    match family {
        TaskFamily::Cover | TaskFamily::Voice | TaskFamily::Midi => "taskId",
        _ => "task_id",
    }
}

fn build(
    answer: &TaskAnswer,
    stage: &str,
    outcome: Outcome,
    code: i64,
    message: Option<String>,
    mut data: Map<String, Value>,
) -> SyntheticCallback {
    let family = answer.family();
    data.insert(task_key(family).to_owned(), json!(answer.task_id()));
    let msg = message.clone().unwrap_or_else(|| "success".to_owned());
    let body = json!({ "code": code, "msg": msg, "data": Value::Object(data) });
    SyntheticCallback {
        task_id: answer.task_id().to_owned(),
        family,
        stage: stage.to_owned(),
        outcome,
        code,
        message,
        // Serializing a `Value` cannot fail.
        body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    }
}

/// A stage that is not the end: music `text` and `first`, voice `wait_validating`.
fn step(answer: &TaskAnswer) -> SyntheticCallback {
    let mut data = Map::new();
    let stage = match (answer.status(), answer.payload()) {
        (TaskStatus::Step(word), TaskPayload::Voice { validate_info, .. }) => {
            data.insert("status".into(), json!(word));
            if let Some(info) = validate_info {
                data.insert("validateInfo".into(), json!(info));
            }
            word.clone()
        }
        (status, payload) => {
            let stage = if *status == TaskStatus::Text {
                "text"
            } else {
                "first"
            };
            data.insert("callbackType".into(), json!(stage));
            if let TaskPayload::Music { tracks } = payload {
                data.insert("data".into(), snake_tracks(tracks));
            }
            stage.to_owned()
        }
    };
    build(answer, &stage, Outcome::Success, 200, None, data)
}

fn success(answer: &TaskAnswer) -> Result<SyntheticCallback, AnswerError> {
    let mut data = Map::new();
    match answer.payload() {
        TaskPayload::Music { tracks } => {
            if tracks.is_empty() {
                return Err(AnswerError::no_result("tracks"));
            }
            data.insert("callbackType".into(), json!("complete"));
            data.insert("data".into(), snake_tracks(tracks));
        }
        TaskPayload::Lyrics { items } => {
            if items.is_empty() {
                return Err(AnswerError::no_result("lyrics"));
            }
            data.insert("callbackType".into(), json!("complete"));
            let items = items.iter().map(|item| Value::Object(snake_keys(item)));
            data.insert("data".into(), Value::Array(items.collect()));
        }
        TaskPayload::Wav { audio_wav_url } => {
            let url = audio_wav_url
                .as_ref()
                .ok_or(AnswerError::no_result("audioWavUrl"))?;
            data.insert("audioWavUrl".into(), json!(url));
        }
        TaskPayload::Separation { stems } => {
            if !answer.payload().has_result() {
                return Err(AnswerError::no_result("stem URLs"));
            }
            data.insert(
                "vocal_separation_info".into(),
                Value::Object(snake_keys(stems)),
            );
        }
        TaskPayload::Midi { midi } => {
            if !answer.payload().has_result() {
                return Err(AnswerError::no_result("instruments"));
            }
            data.extend(midi.iter().map(|(k, v)| (k.clone(), v.clone())));
        }
        TaskPayload::Video { video_url } => {
            let url = video_url
                .as_ref()
                .ok_or(AnswerError::no_result("videoUrl"))?;
            data.insert("video_url".into(), json!(url));
        }
        TaskPayload::Cover { images } => {
            if images.is_empty() {
                return Err(AnswerError::no_result("images"));
            }
            data.insert("images".into(), json!(images));
        }
        TaskPayload::Voice {
            voice_id,
            validate_info,
        } => {
            let voice_id = voice_id.as_ref().ok_or(AnswerError::no_result("voiceId"))?;
            data.insert("status".into(), json!("success"));
            data.insert("voiceId".into(), json!(voice_id));
            if let Some(info) = validate_info {
                data.insert("validateInfo".into(), json!(info));
            }
        }
    }
    Ok(build(answer, "complete", Outcome::Success, 200, None, data))
}

fn failure(answer: &TaskAnswer, family: TaskFamily) -> SyntheticCallback {
    let word = match answer.status() {
        TaskStatus::Failed(word) => word.as_str(),
        _ => "CALLBACK_EXCEPTION",
    };
    let code = match answer.error_code() {
        Some(code) if code != 200 => code,
        _ if word == "SENSITIVE_WORD_ERROR" => 400,
        _ => 500,
    };
    let message = Some(
        answer
            .error_message()
            .map_or_else(|| word.to_owned(), str::to_owned),
    );
    let mut data = Map::new();
    match family {
        TaskFamily::Music => {
            data.insert("callbackType".into(), json!("error"));
            data.insert("data".into(), Value::Null);
        }
        // Lyrics failures come as `complete` with code 400 and no data.
        TaskFamily::Lyrics => {
            data.insert("callbackType".into(), json!("complete"));
            data.insert("data".into(), Value::Null);
        }
        TaskFamily::Wav => {
            data.insert("audioWavUrl".into(), Value::Null);
        }
        TaskFamily::Separation => {
            data.insert("vocal_separation_info".into(), Value::Null);
        }
        TaskFamily::Video => {
            data.insert("video_url".into(), Value::Null);
        }
        TaskFamily::Cover => {
            data.insert("images".into(), Value::Null);
        }
        TaskFamily::Voice => {
            data.insert("status".into(), json!("fail"));
            data.insert("errorCode".into(), json!(code));
            data.insert("errorMessage".into(), json!(message));
        }
        TaskFamily::Midi => {}
    }
    build(answer, "error", Outcome::Failure, code, message, data)
}

/// The tracks with the callback's snake_case keys (`audioUrl` → `audio_url`);
/// `createTime` keeps its name, as in callbacks.
fn snake_tracks(tracks: &[Map<String, Value>]) -> Value {
    Value::Array(
        tracks
            .iter()
            .map(|track| Value::Object(snake_keys(track)))
            .collect(),
    )
}

fn snake_keys(object: &Map<String, Value>) -> Map<String, Value> {
    object
        .iter()
        .map(|(key, value)| {
            let key = if key == "createTime" {
                key.clone()
            } else {
                snake_case(key)
            };
            (key, value.clone())
        })
        .collect()
}

fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// Whether a callback reports the end of its task: music `text` and `first` and a voice
/// step are not; every other success and every failure is.
pub(crate) fn is_final_callback(event: &CallbackEvent) -> bool {
    match event {
        CallbackEvent::Text(_) | CallbackEvent::First(_) => false,
        CallbackEvent::Complete(_) | CallbackEvent::Failure(_) => true,
        other => {
            let json = other.raw_json();
            let status = json["data"]["status"].as_str().unwrap_or("");
            !matches!(
                status,
                "wait_validating" | "wait_processing" | "processing_validate"
            )
        }
    }
}

/// The family a callback body's shape belongs to, for callbacks of tasks that were
/// not registered.
pub(crate) fn family_from_body(body: &Value) -> TaskFamily {
    let data = &body["data"];
    let has = |key: &str| data.get(key).is_some();
    let first_item = data["data"].as_array().and_then(|items| items.first());
    if has("audioWavUrl") {
        TaskFamily::Wav
    } else if has("vocal_separation_info") || has("vocal_removal_info") {
        TaskFamily::Separation
    } else if has("video_url") {
        TaskFamily::Video
    } else if has("images") {
        TaskFamily::Cover
    } else if has("voiceId") || has("validateInfo") || data["status"].is_string() {
        TaskFamily::Voice
    } else if has("instruments")
        || has("state")
        || has("taskId")
        || body.get("task_id").is_some()
        || body.get("taskId").is_some()
    {
        // Music and lyrics write `data.task_id`; of the families writing `taskId`,
        // only midi carries nothing else on failure.
        TaskFamily::Midi
    } else if data["callbackType"] == "complete"
        && (body["code"] != 200
            || first_item
                .is_some_and(|item| item.get("text").is_some() && item.get("audio_url").is_none()))
    {
        // Lyrics come as `complete` even on failure; music failures as `error`.
        TaskFamily::Lyrics
    } else {
        TaskFamily::Music
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn camel_case_keys_become_snake_case() {
        assert_eq!(snake_case("streamAudioUrl"), "stream_audio_url");
        assert_eq!(snake_case("id"), "id");
    }
}
