//! Why an inbox operation failed. A leaf module.

use std::fmt;

use crate::error::BoxError;

/// Why an inbox operation failed.
///
/// ```
/// use suno_callback::inbox::InboxError;
///
/// let down = InboxError::unavailable(std::io::Error::other("connection refused"));
/// assert!(down.is_unavailable());
/// assert!(down.to_string().contains("connection refused"));
/// ```
#[derive(Debug)]
pub struct InboxError {
    kind: Kind,
    source: Option<BoxError>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Unavailable,
    Config,
    WrongBackend,
}

impl InboxError {
    /// The database could not be reached, timed out or failed.
    pub fn unavailable(source: impl Into<BoxError>) -> Self {
        Self {
            kind: Kind::Unavailable,
            source: Some(source.into()),
        }
    }

    pub(crate) fn config(message: impl Into<BoxError>) -> Self {
        Self {
            kind: Kind::Config,
            source: Some(message.into()),
        }
    }

    pub(crate) fn wrong_backend() -> Self {
        Self {
            kind: Kind::WrongBackend,
            source: None,
        }
    }

    /// See [`InboxError::unavailable`].
    pub fn is_unavailable(&self) -> bool {
        self.kind == Kind::Unavailable
    }

    /// The URL or the options could not be used (unknown scheme, bad URL, a feature
    /// not enabled).
    pub fn is_config(&self) -> bool {
        self.kind == Kind::Config
    }

    /// The transaction of one database was asked for on an inbox of another.
    pub fn is_wrong_backend(&self) -> bool {
        self.kind == Kind::WrongBackend
    }
}

impl From<sqlx::Error> for InboxError {
    fn from(error: sqlx::Error) -> Self {
        Self::unavailable(error)
    }
}

impl fmt::Display for InboxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self.kind {
            Kind::Unavailable => "inbox unavailable",
            Kind::Config => "inbox configuration refused",
            Kind::WrongBackend => "the inbox runs on another database",
        })?;
        match &self.source {
            Some(source) => write!(f, ": {source}"),
            None => Ok(()),
        }
    }
}

impl std::error::Error for InboxError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|source| source as &(dyn std::error::Error + 'static))
    }
}
