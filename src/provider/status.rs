//! The status vocabularies of the task-details answers, one per family: a text
//! `status` (music, lyrics, voice), a text `successFlag` (wav, separation, video) or an
//! integer `successFlag` (midi, cover).

use serde_json::Value;

use super::error::AnswerError;
use crate::event::Family;

/// Where a task stands, as the provider's task-details answer says.
///
/// ```
/// use suno_callback::Family;
/// use suno_callback::provider::TaskStatus;
///
/// let status = TaskStatus::from_wire(Family::Music, &serde_json::json!("FIRST_SUCCESS"))?;
/// assert_eq!(status, TaskStatus::First);
/// assert!(!status.is_final());
/// let status = TaskStatus::from_wire(Family::Midi, &serde_json::json!(3))?;
/// assert!(status.is_failure());
/// # Ok::<(), suno_callback::provider::AnswerError>(())
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum TaskStatus {
    /// Not done yet, and nothing to deliver (`PENDING`, `0`, `wait_processing`,
    /// `processing_validate`, cover's `2` "generating").
    Pending,
    /// Music: the lyrics or text are done (`TEXT_SUCCESS`).
    Text,
    /// Music: the first track is done (`FIRST_SUCCESS`).
    First,
    /// Voice: a step that waits for the user (`wait_validating`); delivered, not final.
    Step(String),
    /// Done (`SUCCESS`, `1`, `success`).
    Success,
    /// Failed, with the status word as the provider wrote it (`GENERATE_AUDIO_FAILED`,
    /// `2`, `fail`…).
    Failed(String),
    /// `CALLBACK_EXCEPTION`: the provider could not deliver the callback. The outcome is
    /// then read from what the answer carries (success when it carries the result).
    CallbackException,
}

impl TaskStatus {
    /// Parses a status value (the `status` or `successFlag` field) in the family's
    /// vocabulary. Integers written as strings are accepted, case is ignored.
    ///
    /// # Errors
    ///
    /// An [`AnswerError`] when the value is `null` (missing), neither a string nor an
    /// integer, or a word or flag outside the family's vocabulary.
    pub fn from_wire(family: Family, value: &Value) -> Result<Self, AnswerError> {
        let text = match value {
            Value::String(text) => text.trim(),
            Value::Number(number) => {
                return number
                    .as_i64()
                    .ok_or_else(|| AnswerError::unknown_status(family, &number.to_string()))
                    .and_then(|flag| Self::from_flag(family, flag));
            }
            Value::Null => return Err(AnswerError::missing("status")),
            other => return Err(AnswerError::unknown_status(family, &other.to_string())),
        };
        if let Ok(flag) = text.parse::<i64>() {
            return Self::from_flag(family, flag);
        }
        let upper = text.to_ascii_uppercase();
        let status = match upper.as_str() {
            "PENDING" | "WAIT_PROCESSING" | "PROCESSING_VALIDATE" | "GENERATING" => Self::Pending,
            "TEXT_SUCCESS" if family == Family::Music => Self::Text,
            "FIRST_SUCCESS" if family == Family::Music => Self::First,
            "WAIT_VALIDATING" if family == Family::Voice => {
                Self::Step("wait_validating".to_owned())
            }
            "SUCCESS" | "COMPLETE" => Self::Success,
            "CALLBACK_EXCEPTION" => Self::CallbackException,
            "FAIL" | "FAILED" | "SENSITIVE_WORD_ERROR" | "PROCESSING_VALIDATE_FAIL" => {
                Self::Failed(upper)
            }
            failed if failed.ends_with("_FAILED") => Self::Failed(upper),
            _ => return Err(AnswerError::unknown_status(family, text)),
        };
        Ok(status)
    }

    /// Parses a jobs-route `data.state`: `waiting`, `queuing` and `generating` are
    /// pending, `success` is done, `fail` failed (as [`Failed`](Self::Failed)`("fail")`).
    /// Case is ignored.
    ///
    /// ```
    /// use suno_callback::provider::TaskStatus;
    ///
    /// assert_eq!(TaskStatus::from_jobs_state(&serde_json::json!("generating"))?, TaskStatus::Pending);
    /// assert!(TaskStatus::from_jobs_state(&serde_json::json!("fail"))?.is_failure());
    /// # Ok::<(), suno_callback::provider::AnswerError>(())
    /// ```
    ///
    /// # Errors
    ///
    /// The state is absent, not a string, or none of the five.
    pub fn from_jobs_state(value: &Value) -> Result<Self, AnswerError> {
        let text = match value {
            Value::String(text) => text.trim(),
            Value::Null => return Err(AnswerError::missing("state")),
            other => {
                return Err(AnswerError::unknown_status(
                    Family::Unknown,
                    &other.to_string(),
                ));
            }
        };
        let status = match text.to_ascii_lowercase().as_str() {
            "waiting" | "queuing" | "generating" => Self::Pending,
            "success" => Self::Success,
            "fail" => Self::Failed("fail".to_owned()),
            _ => return Err(AnswerError::unknown_status(Family::Unknown, text)),
        };
        Ok(status)
    }

    /// The integer `successFlag` of midi (0 pending, 1 success, 2 create failed,
    /// 3 generation failed) and cover (0 pending, 1 success, 2 generating, 3 failed).
    fn from_flag(family: Family, flag: i64) -> Result<Self, AnswerError> {
        let status = match (family, flag) {
            (_, 0) => Self::Pending,
            (_, 1) => Self::Success,
            (Family::Cover, 2) => Self::Pending,
            (Family::Midi, 2) => Self::Failed("CREATE_TASK_FAILED".to_owned()),
            (Family::Midi | Family::Cover, 3) => Self::Failed("GENERATE_FAILED".to_owned()),
            _ => return Err(AnswerError::unknown_status(family, &flag.to_string())),
        };
        Ok(status)
    }

    /// Whether nothing more will happen to the task.
    pub fn is_final(&self) -> bool {
        matches!(
            self,
            Self::Success | Self::Failed(_) | Self::CallbackException
        )
    }

    /// Whether this is [`Failed`](Self::Failed).
    pub fn is_failure(&self) -> bool {
        matches!(self, Self::Failed(_))
    }
}
