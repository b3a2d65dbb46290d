//! The one place that maps a task-details answer to the crate's callback events: an
//! answer becomes the body the sender would have posted for it (a *synthetic
//! callback*), so [`CallbackEvent::from_json_as`] of that body and its family yields
//! the same typed event, and the same dedup key, as the callback itself. On the jobs
//! route the answer's `data` is the callback's `data`, so the body is that `data`
//! verbatim under the callback's `code` and `msg`, read by shape
//! ([`CallbackEvent::from_json`]) as the callback is.

use bytes::Bytes;
use serde_json::{Map, Value, json};

use super::answer::{TaskAnswer, TaskPayload};
use super::error::AnswerError;
use super::status::TaskStatus;
use crate::event::{ApiRoute, CallbackEvent, Family, ParseError};

pub use crate::event::Outcome;

/// An answer mapped to the callback the sender would have posted for it.
///
/// ```
/// use suno_callback::CallbackEvent;
/// use suno_callback::Family;
/// use suno_callback::provider::{Outcome, SyntheticCallback, TaskAnswer};
///
/// let body = br#"{"code":200,"data":{"taskId":"t1","successFlag":"SUCCESS",
///     "response":{"videoUrl":"https://cdn.example.net/v.mp4"}}}"#;
/// let answer = TaskAnswer::from_json(Family::Video, body)?;
/// let synthetic = SyntheticCallback::from_answer(&answer)?.expect("final");
/// assert_eq!(synthetic.outcome(), Outcome::Success);
/// let event = synthetic.to_event()?;
/// assert_eq!(event.task_id(), "t1");
/// assert_eq!(event.raw_json()["data"]["video_url"], "https://cdn.example.net/v.mp4");
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct SyntheticCallback {
    route: ApiRoute,
    task_id: String,
    family: Family,
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
    ///
    /// # Errors
    ///
    /// The answer says the task is done but lacks what its event carries.
    pub fn from_answer(answer: &TaskAnswer) -> Result<Option<Self>, AnswerError> {
        if answer.route() == ApiRoute::Jobs {
            return jobs(answer);
        }
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
    /// The family whose endpoint answered (jobs route: the model's family).
    pub fn family(&self) -> Family {
        self.family
    }
    /// The route whose endpoint answered.
    pub fn route(&self) -> ApiRoute {
        self.route
    }
    /// The stage: `text`, `first`, `complete` or `error` for music; `complete` or
    /// `error` for the other families and on the jobs route; a voice step's word
    /// (`wait_validating`).
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
    /// The body parsed as a callback of its family (jobs route: by its shape, as the
    /// jobs callback is): the same event, family, stage and outcome (so the same dedup
    /// key) as the sender's callback.
    ///
    /// # Errors
    ///
    /// The body does not parse as a callback (not expected of a mapped answer).
    pub fn to_event(&self) -> Result<CallbackEvent, ParseError> {
        match self.route {
            ApiRoute::Jobs => CallbackEvent::from_json(self.body.clone()),
            _ => CallbackEvent::from_json_as(self.family, self.body.clone()),
        }
    }
    /// Whether nothing more will happen to the task after this event.
    pub fn is_final(&self) -> bool {
        self.outcome == Outcome::Failure || self.stage == "complete"
    }
}

/// The callback's task id key: most families write `task_id`, cover, voice and midi
/// write `taskId`.
fn task_key(family: Family) -> &'static str {
    match family {
        Family::Cover | Family::Voice | Family::Midi => "taskId",
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
        route: ApiRoute::Classic,
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
        // A jobs answer is mapped by `jobs`.
        TaskPayload::Jobs { .. } => return Err(AnswerError::no_result("a classic payload")),
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

fn failure(answer: &TaskAnswer, family: Family) -> SyntheticCallback {
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
        Family::Music => {
            data.insert("callbackType".into(), json!("error"));
            data.insert("data".into(), Value::Null);
        }
        // Lyrics failures come as `complete` with code 400 and no data.
        Family::Lyrics => {
            data.insert("callbackType".into(), json!("complete"));
            data.insert("data".into(), Value::Null);
        }
        Family::Wav => {
            data.insert("audioWavUrl".into(), Value::Null);
        }
        Family::Separation => {
            data.insert("vocal_separation_info".into(), Value::Null);
        }
        Family::Video => {
            data.insert("video_url".into(), Value::Null);
        }
        Family::Cover => {
            data.insert("images".into(), Value::Null);
        }
        Family::Voice => {
            data.insert("status".into(), json!("fail"));
            data.insert("errorCode".into(), json!(code));
            data.insert("errorMessage".into(), json!(message));
        }
        _ => {}
    }
    build(answer, "error", Outcome::Failure, code, message, data)
}

/// A jobs-route answer: nothing while `waiting`, `queuing` or `generating`; once
/// `success` or `fail`, the callback `{"code", "msg", "data"}` with the answer's `data`
/// verbatim. `code` is `200` on success; on failure the `failCode` when it is an integer
/// (or one written as a string), else `500`. `msg` is the answer's `msg` on success,
/// the `failMsg` (else the answer's `msg`) on failure.
fn jobs(answer: &TaskAnswer) -> Result<Option<SyntheticCallback>, AnswerError> {
    let TaskPayload::Jobs { data, .. } = answer.payload() else {
        return Err(AnswerError::no_result("data"));
    };
    let (outcome, stage, code, message) = match answer.status() {
        TaskStatus::Success => (Outcome::Success, "complete", 200, None),
        TaskStatus::Failed(_) => {
            let message = answer.error_message().or(answer.msg()).map(str::to_owned);
            let code = answer.error_code().unwrap_or(500);
            (Outcome::Failure, "error", code, message)
        }
        _ => return Ok(None),
    };
    let msg = message.as_deref().or(answer.msg()).unwrap_or("success");
    let body = json!({ "code": code, "msg": msg, "data": Value::Object(data.clone()) });
    Ok(Some(SyntheticCallback {
        route: ApiRoute::Jobs,
        task_id: answer.task_id().to_owned(),
        family: answer.family(),
        stage: stage.to_owned(),
        outcome,
        code,
        message,
        // Serializing a `Value` cannot fail.
        body: Bytes::from(serde_json::to_vec(&body).unwrap_or_default()),
    }))
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

/// Whether an event of `stage` and `outcome` is a task's last: a failure, or any
/// stage but `text`, `first` and a voice task's waiting steps.
pub(crate) fn is_final(stage: &str, outcome: Outcome) -> bool {
    outcome == Outcome::Failure
        || !matches!(
            stage,
            "text" | "first" | "wait_validating" | "wait_processing" | "processing_validate"
        )
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
