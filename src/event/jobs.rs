//! What a callback of the jobs route (`POST /api/v1/jobs/createTask`) carries beside its
//! family's payload: the model, the task's state and bill, and the raw `resultJson` and
//! `param`. A leaf module; the jobs shape (`shape::jobs`) fills it in.

use std::fmt;

use super::time::CreateTime;
use super::tolerant::from_slice_tolerant;
use crate::untrusted::Untrusted;

/// The jobs-route metadata of a callback: [`CallbackEvent::jobs`] gives it for a
/// callback of a task created through `POST /api/v1/jobs/createTask`.
///
/// ```
/// use suno_callback::{ApiRoute, CallbackEvent, Family};
///
/// let body = r#"{"code":200,"msg":"ok","data":{"taskId":"t1",
///     "model":"ai-music-api/convert-to-wav-format","state":"success",
///     "resultJson":"{\"audioWavUrl\":\"https://cdn.example.net/a.wav\"}",
///     "param":"{\"model\":\"ai-music-api/convert-to-wav-format\"}",
///     "costTime":41,"consumeCredits":12,"remainedCredits":2488,
///     "createTime":1791201600000,"completeTime":1791201641000}}"#;
/// let event = CallbackEvent::from_json(body)?;
/// assert_eq!((event.family(), event.api_route()), (Family::Wav, ApiRoute::Jobs));
/// let jobs = event.jobs().expect("a jobs-route callback");
/// assert_eq!(jobs.model(), Some("ai-music-api/convert-to-wav-format"));
/// assert_eq!(jobs.state(), Some("success"));
/// assert_eq!((jobs.consume_credits(), jobs.remained_credits()), (Some(12.0), Some(2488.0)));
/// assert_eq!(jobs.cost_time(), Some(41.0));
/// assert_eq!(jobs.complete_time().and_then(|t| t.epoch_millis()), Some(1791201641000));
/// assert_eq!(jobs.result_json(), Some(r#"{"audioWavUrl":"https://cdn.example.net/a.wav"}"#));
/// assert_eq!(jobs.param_json().expect("JSON")["model"], "ai-music-api/convert-to-wav-format");
/// # Ok::<(), suno_callback::ParseError>(())
/// ```
///
/// [`CallbackEvent::jobs`]: crate::CallbackEvent::jobs
#[derive(Clone, Default, PartialEq)]
#[non_exhaustive]
pub struct JobsMeta {
    pub(crate) model: Option<String>,
    pub(crate) state: Option<String>,
    pub(crate) result_json: Option<String>,
    pub(crate) result_urls: Vec<String>,
    pub(crate) param: Option<String>,
    pub(crate) fail_code: Option<String>,
    pub(crate) fail_msg: Option<String>,
    pub(crate) cost_time: Option<f64>,
    pub(crate) consume_credits: Option<f64>,
    pub(crate) remained_credits: Option<f64>,
    pub(crate) create_time: Option<CreateTime>,
    pub(crate) complete_time: Option<CreateTime>,
    pub(crate) update_time: Option<CreateTime>,
}

impl JobsMeta {
    /// The model the task was created with (`model`), such as
    /// `ai-music-api/generate`; also for a model this crate does not know (the event's
    /// family is then [`Family::Unknown`](crate::Family::Unknown)).
    pub fn model(&self) -> Option<&str> {
        self.model.as_deref()
    }
    /// The task's state as sent (`state`): `success` or `fail` in a callback;
    /// `waiting`, `queuing`, `generating` too in a task-details answer.
    pub fn state(&self) -> Option<&str> {
        self.state.as_deref()
    }
    /// `resultJson` as sent: the text of the JSON string (or of the object, when the
    /// sender wrote one), whether or not it is JSON; `None` when absent, `null` or `""`.
    pub fn result_json(&self) -> Option<&str> {
        self.result_json.as_deref()
    }
    /// `resultJson` as a JSON value, read as the body is (the same depth limit, the
    /// same repairs); `None` when it is not JSON. Parsed again on each call.
    pub fn result_json_value(&self) -> Option<serde_json::Value> {
        json_value(self.result_json.as_deref()?)
    }
    /// `resultJson`'s `resultUrls`, the generic models' result (empty when absent).
    pub fn result_urls(&self) -> &[String] {
        &self.result_urls
    }
    /// `param`, the original request as the sender echoes it (a JSON text).
    pub fn param(&self) -> Option<&str> {
        self.param.as_deref()
    }
    /// `param` as a JSON value; `None` when it is not JSON. Parsed again on each call.
    pub fn param_json(&self) -> Option<serde_json::Value> {
        json_value(self.param.as_deref()?)
    }
    /// The provider's failure code (`failCode`, a text such as `"500"`), on failure.
    pub fn fail_code(&self) -> Option<&str> {
        self.fail_code.as_deref()
    }
    /// The provider's failure message (`failMsg`), on failure.
    pub fn fail_msg(&self) -> Option<&str> {
        self.fail_msg.as_deref()
    }
    /// How long the task took, as sent (`costTime`).
    pub fn cost_time(&self) -> Option<f64> {
        self.cost_time
    }
    /// The credits the task consumed (`consumeCredits`).
    pub fn consume_credits(&self) -> Option<f64> {
        self.consume_credits
    }
    /// The credits left on the account (`remainedCredits`).
    pub fn remained_credits(&self) -> Option<f64> {
        self.remained_credits
    }
    /// When the task was created (`createTime`).
    pub fn create_time(&self) -> Option<&CreateTime> {
        self.create_time.as_ref()
    }
    /// When the task completed (`completeTime`).
    pub fn complete_time(&self) -> Option<&CreateTime> {
        self.complete_time.as_ref()
    }
    /// When the task was last updated (`updateTime`).
    pub fn update_time(&self) -> Option<&CreateTime> {
        self.update_time.as_ref()
    }
}

/// `text` as a JSON value, within the body's depth limit.
fn json_value(text: &str) -> Option<serde_json::Value> {
    let mut scanner = super::scan::Scanner::new(text.as_bytes());
    scanner.whole_value().ok()?;
    from_slice_tolerant(text.as_bytes()).ok()
}

impl fmt::Debug for JobsMeta {
    /// The texts the sender echoes (`resultJson`, `param`) by length only; the other
    /// texts cut short and escaped, as every text from a body in a log line.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("JobsMeta")
            .field("model", &self.model.as_deref().map(Untrusted))
            .field("state", &self.state.as_deref().map(Untrusted))
            .field(
                "result_json_len",
                &self.result_json.as_ref().map(String::len),
            )
            .field("result_urls", &self.result_urls.len())
            .field("param_len", &self.param.as_ref().map(String::len))
            .field("fail_code", &self.fail_code.as_deref().map(Untrusted))
            .field("fail_msg", &self.fail_msg.as_deref().map(Untrusted))
            .field("cost_time", &self.cost_time)
            .field("consume_credits", &self.consume_credits)
            .field("remained_credits", &self.remained_credits)
            .field("create_time", &self.create_time)
            .field("complete_time", &self.complete_time)
            .field("update_time", &self.update_time)
            .finish()
    }
}
