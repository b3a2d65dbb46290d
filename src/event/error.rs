//! Why a body is not a callback: a leaf module, used by the envelope, the scanner and
//! the shapes.

use std::fmt;

/// Why a body is not a callback (answered `400`).
///
/// ```
/// use suno_callback::CallbackEvent;
///
/// let error = CallbackEvent::from_json(r#"{"code":200,"data":{}}"#).unwrap_err();
/// assert!(error.is_missing_task_id());
/// ```
#[derive(Debug)]
pub struct ParseError {
    kind: ParseErrorKind,
}

#[derive(Debug)]
pub(crate) enum ParseErrorKind {
    NotAnObject,
    Json(serde_json::Error),
    TooDeep,
    MissingTaskId,
    MissingCode,
    BadCallbackType,
    BadStatus,
    BadState,
}

impl From<ParseErrorKind> for ParseError {
    fn from(kind: ParseErrorKind) -> Self {
        Self { kind }
    }
}

impl ParseError {
    /// The body is not a JSON object.
    pub fn is_json(&self) -> bool {
        matches!(
            self.kind,
            ParseErrorKind::Json(_) | ParseErrorKind::NotAnObject
        )
    }

    /// Arrays and objects nest deeper than a JSON value can be built (127 levels).
    pub fn is_too_deep(&self) -> bool {
        matches!(self.kind, ParseErrorKind::TooDeep)
    }

    /// No task id at `data.task_id`, `data.taskId`, `task_id` or `taskId`.
    pub fn is_missing_task_id(&self) -> bool {
        matches!(self.kind, ParseErrorKind::MissingTaskId)
    }

    /// No integer `code`.
    pub fn is_missing_code(&self) -> bool {
        matches!(self.kind, ParseErrorKind::MissingCode)
    }

    /// A `callbackType` (or a voice `status`, or a jobs-route `state`) longer than 64 bytes or with a
    /// character outside printable ASCII: no callback sends one, and it would name a
    /// dedup key.
    pub fn is_bad_callback_type(&self) -> bool {
        matches!(
            self.kind,
            ParseErrorKind::BadCallbackType | ParseErrorKind::BadStatus | ParseErrorKind::BadState
        )
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            ParseErrorKind::NotAnObject => f.write_str("body is not a JSON object"),
            ParseErrorKind::Json(error) => write!(f, "body is not a JSON object: {error}"),
            ParseErrorKind::TooDeep => f.write_str("body nests too deep"),
            ParseErrorKind::MissingTaskId => f.write_str("body has no task id"),
            ParseErrorKind::MissingCode => f.write_str("body has no integer `code`"),
            ParseErrorKind::BadCallbackType => {
                f.write_str("`callbackType` is longer than 64 bytes or not printable")
            }
            ParseErrorKind::BadStatus => {
                f.write_str("`status` is longer than 64 bytes or not printable")
            }
            ParseErrorKind::BadState => {
                f.write_str("`state` is longer than 64 bytes or not printable")
            }
        }
    }
}

impl std::error::Error for ParseError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.kind {
            ParseErrorKind::Json(error) => Some(error),
            _ => None,
        }
    }
}
