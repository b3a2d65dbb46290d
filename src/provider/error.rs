//! The errors of the task-details client and of the reading of its answers.

use std::fmt;

use crate::event::Family;

/// Longest piece of provider text kept in an error, in characters.
const MAX_TEXT: usize = 200;

/// Keeps at most [`MAX_TEXT`] characters of `text`, escaped for logs.
pub(crate) fn cut(text: &str) -> String {
    let mut shown: String = text.chars().take(MAX_TEXT).collect();
    if text.chars().nth(MAX_TEXT).is_some() {
        shown.push('…');
    }
    shown.escape_debug().to_string()
}

/// A task-details answer that cannot be read or mapped to an event. Nothing is guessed:
/// such an answer is reported, never delivered.
///
/// ```
/// use suno_callback::Family;
/// use suno_callback::provider::TaskAnswer;
///
/// let error = TaskAnswer::from_json(Family::Wav, br#"{"code":200,"data":{"taskId":"t1","successFlag":"MAYBE"}}"#)
///     .unwrap_err();
/// assert!(error.is_unknown_status());
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AnswerError {
    kind: AnswerErrorKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum AnswerErrorKind {
    Json(String),
    Missing(&'static str),
    UnknownStatus { family: Family, value: String },
    Refused { code: i64, msg: String },
    NoResult(&'static str),
    UnknownFamily,
}

impl AnswerError {
    pub(crate) fn json(error: &serde_json::Error) -> Self {
        Self {
            kind: AnswerErrorKind::Json(error.to_string()),
        }
    }
    pub(crate) fn missing(field: &'static str) -> Self {
        Self {
            kind: AnswerErrorKind::Missing(field),
        }
    }
    pub(crate) fn unknown_status(family: Family, value: &str) -> Self {
        Self {
            kind: AnswerErrorKind::UnknownStatus {
                family,
                value: cut(value),
            },
        }
    }
    pub(crate) fn refused(code: i64, msg: &str) -> Self {
        Self {
            kind: AnswerErrorKind::Refused {
                code,
                msg: cut(msg),
            },
        }
    }
    pub(crate) fn no_result(what: &'static str) -> Self {
        Self {
            kind: AnswerErrorKind::NoResult(what),
        }
    }
    pub(crate) fn unknown_family() -> Self {
        Self {
            kind: AnswerErrorKind::UnknownFamily,
        }
    }

    /// The answer is not a JSON object.
    pub fn is_json(&self) -> bool {
        matches!(self.kind, AnswerErrorKind::Json(_))
    }
    /// A field the answer needs is absent (`data`, the status).
    pub fn is_missing_field(&self) -> bool {
        matches!(self.kind, AnswerErrorKind::Missing(_))
    }
    /// The status is none of the family's vocabulary.
    pub fn is_unknown_status(&self) -> bool {
        matches!(self.kind, AnswerErrorKind::UnknownStatus { .. })
    }
    /// The answer's own `code` is not `200` (unknown task, bad key…); see
    /// [`refused_code`](Self::refused_code).
    pub fn is_refused(&self) -> bool {
        matches!(self.kind, AnswerErrorKind::Refused { .. })
    }
    /// The answer's `code` when it [is refused](Self::is_refused).
    pub fn refused_code(&self) -> Option<i64> {
        match self.kind {
            AnswerErrorKind::Refused { code, .. } => Some(code),
            _ => None,
        }
    }
    /// A success whose result is missing (a music `SUCCESS` without tracks…).
    pub fn is_no_result(&self) -> bool {
        matches!(self.kind, AnswerErrorKind::NoResult(_))
    }
    /// The answer was to be read as [`Family::Unknown`]'s, which no classic endpoint
    /// answers for.
    pub fn is_unknown_family(&self) -> bool {
        matches!(self.kind, AnswerErrorKind::UnknownFamily)
    }
}

impl fmt::Display for AnswerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            AnswerErrorKind::Json(error) => write!(f, "answer is not a JSON object: {error}"),
            AnswerErrorKind::Missing(field) => write!(f, "answer has no `{field}`"),
            AnswerErrorKind::UnknownStatus {
                family: Family::Unknown,
                value,
            } => write!(f, "unknown task state \"{value}\""),
            AnswerErrorKind::UnknownStatus { family, value } => {
                write!(f, "unknown {family} task status \"{value}\"")
            }
            AnswerErrorKind::Refused { code, msg } => {
                write!(f, "provider answered code {code}: \"{msg}\"")
            }
            AnswerErrorKind::NoResult(what) => write!(f, "success without {what}"),
            AnswerErrorKind::UnknownFamily => {
                f.write_str("a task of an unknown family has no task-details endpoint")
            }
        }
    }
}

impl std::error::Error for AnswerError {}

/// A request to the provider (task details, task creation) that did not give an answer.
///
/// ```
/// use suno_callback::provider::ProviderClient;
///
/// // No API key: the builder refuses.
/// let error = ProviderClient::builder("").build().unwrap_err();
/// assert!(error.is_config());
/// ```
#[derive(Debug)]
pub struct ProviderError {
    kind: ProviderErrorKind,
}

#[derive(Debug)]
enum ProviderErrorKind {
    Config(String),
    Transport(reqwest::Error),
    Timeout,
    Status { status: u16, attempts: u32 },
    TooLarge,
    Answer(AnswerError),
    UnknownFamily,
}

impl ProviderError {
    pub(crate) fn config(reason: impl Into<String>) -> Self {
        Self {
            kind: ProviderErrorKind::Config(reason.into()),
        }
    }
    pub(crate) fn transport(error: reqwest::Error) -> Self {
        if error.is_timeout() {
            return Self::timeout();
        }
        Self {
            // The URL holds only the base and the task id, never the key; strip it
            // anyway so no error text carries request details.
            kind: ProviderErrorKind::Transport(error.without_url()),
        }
    }
    pub(crate) fn timeout() -> Self {
        Self {
            kind: ProviderErrorKind::Timeout,
        }
    }
    pub(crate) fn status(status: u16, attempts: u32) -> Self {
        Self {
            kind: ProviderErrorKind::Status { status, attempts },
        }
    }
    pub(crate) fn too_large() -> Self {
        Self {
            kind: ProviderErrorKind::TooLarge,
        }
    }
    pub(crate) fn answer(error: AnswerError) -> Self {
        Self {
            kind: ProviderErrorKind::Answer(error),
        }
    }
    pub(crate) fn unknown_family() -> Self {
        Self {
            kind: ProviderErrorKind::UnknownFamily,
        }
    }

    /// The client's configuration is invalid.
    pub fn is_config(&self) -> bool {
        matches!(self.kind, ProviderErrorKind::Config(_))
    }
    /// The request did not complete (connection, TLS).
    pub fn is_transport(&self) -> bool {
        matches!(self.kind, ProviderErrorKind::Transport(_))
    }
    /// The answer did not come within the client's timeout.
    pub fn is_timeout(&self) -> bool {
        matches!(self.kind, ProviderErrorKind::Timeout)
    }
    /// The HTTP status of the last attempt when it was not `200`.
    pub fn http_status(&self) -> Option<u16> {
        match self.kind {
            ProviderErrorKind::Status { status, .. } => Some(status),
            _ => None,
        }
    }
    /// The answer is larger than the client reads.
    pub fn is_too_large(&self) -> bool {
        matches!(self.kind, ProviderErrorKind::TooLarge)
    }
    /// The task's family is [`Family::Unknown`] on the classic route: no endpoint can
    /// be asked (a jobs-route task is asked whatever its family).
    pub fn is_unknown_family(&self) -> bool {
        matches!(self.kind, ProviderErrorKind::UnknownFamily)
    }
    /// The answer came but cannot be read or mapped.
    pub fn answer_error(&self) -> Option<&AnswerError> {
        match &self.kind {
            ProviderErrorKind::Answer(error) => Some(error),
            _ => None,
        }
    }
}

impl fmt::Display for ProviderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ProviderErrorKind::Config(reason) => write!(f, "invalid provider client: {reason}"),
            ProviderErrorKind::Transport(_) => f.write_str("provider request failed"),
            ProviderErrorKind::Timeout => f.write_str("provider request timed out"),
            ProviderErrorKind::Status { status, attempts } => write!(
                f,
                "provider answered HTTP {status} (after {attempts} attempts)"
            ),
            ProviderErrorKind::TooLarge => f.write_str("provider answer too large"),
            ProviderErrorKind::Answer(error) => write!(f, "provider answer: {error}"),
            ProviderErrorKind::UnknownFamily => {
                f.write_str("a task of an unknown family has no task-details endpoint")
            }
        }
    }
}

impl std::error::Error for ProviderError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ProviderErrorKind::Transport(error) => Some(error),
            ProviderErrorKind::Answer(error) => Some(error),
            _ => None,
        }
    }
}
