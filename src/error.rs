//! The crate's error types that do not belong to one stage: what a handler returns
//! and why [`build`](crate::SunoCallbacksBuilder::build) refused a configuration.

use std::error::Error as StdError;
use std::fmt;
use std::ops::Deref;

/// A type-erased error: what [`HandlerError`] and [`StoreError`](crate::store::StoreError)
/// carry as their source.
pub type BoxError = Box<dyn StdError + Send + Sync + 'static>;

/// The error a handler returns. Any `std::error::Error` converts into it with `?`,
/// so a handler can use whatever error type the application already has.
///
/// A handler that returns an error is answered with `500`, its claim is released, and
/// the sender's retry runs the handler again.
///
/// `anyhow::Error` and `Box<dyn Error + Send + Sync>` do not implement
/// `std::error::Error`, so `?` cannot convert them; write
/// `.map_err(HandlerError::new)?` instead. A function that already returns
/// `Result<(), MyError>` plugs in as `|ev| async move { Ok(my_handler(ev).await?) }`.
///
/// ```
/// use suno_callback::HandlerError;
///
/// fn parse_duration(text: &str) -> Result<f64, HandlerError> {
///     let seconds: f64 = text.parse()?; // ParseFloatError converts with `?`
///     if seconds < 0.0 {
///         return Err(HandlerError::msg("negative duration"));
///     }
///     Ok(seconds)
/// }
/// assert!(parse_duration("12.5").is_ok());
/// assert_eq!(parse_duration("-1").unwrap_err().to_string(), "negative duration");
/// ```
pub struct HandlerError {
    inner: BoxError,
}

impl HandlerError {
    /// Wraps any error, including a `Box<dyn Error + Send + Sync>` or an
    /// `anyhow::Error` (through its `Into<Box<dyn Error + Send + Sync>>`).
    pub fn new(error: impl Into<BoxError>) -> Self {
        Self {
            inner: error.into(),
        }
    }

    /// An error made of a message alone.
    pub fn msg(message: impl fmt::Display) -> Self {
        Self {
            inner: message.to_string().into(),
        }
    }

    /// The wrapped error.
    pub fn into_inner(self) -> BoxError {
        self.inner
    }
}

impl<E> From<E> for HandlerError
where
    E: StdError + Send + Sync + 'static,
{
    fn from(error: E) -> Self {
        Self {
            inner: Box::new(error),
        }
    }
}

impl Deref for HandlerError {
    type Target = dyn StdError + Send + Sync + 'static;

    fn deref(&self) -> &Self::Target {
        &*self.inner
    }
}

impl fmt::Debug for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&self.inner, f)
    }
}

impl fmt::Display for HandlerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(&self.inner, f)
    }
}

/// Why a receiver or a verifier could not be built from its configuration.
///
/// ```
/// use suno_callback::SunoCallbacks;
///
/// // No key and no explicit opt-out: refused.
/// let err = SunoCallbacks::builder().build().unwrap_err();
/// assert!(err.is_no_verification());
/// ```
#[derive(Debug)]
pub struct BuildError {
    kind: BuildErrorKind,
}

#[derive(Debug)]
enum BuildErrorKind {
    NoVerification,
    EmptyKey,
    InvalidSetting(String),
}

impl BuildError {
    pub(crate) fn no_verification() -> Self {
        Self {
            kind: BuildErrorKind::NoVerification,
        }
    }

    pub(crate) fn empty_key() -> Self {
        Self {
            kind: BuildErrorKind::EmptyKey,
        }
    }

    pub(crate) fn invalid_setting(message: impl Into<String>) -> Self {
        Self {
            kind: BuildErrorKind::InvalidSetting(message.into()),
        }
    }

    /// No verifier was configured and unverified callbacks were not explicitly allowed.
    pub fn is_no_verification(&self) -> bool {
        matches!(self.kind, BuildErrorKind::NoVerification)
    }

    /// An HMAC key was empty, or a key list had no key.
    pub fn is_empty_key(&self) -> bool {
        matches!(self.kind, BuildErrorKind::EmptyKey)
    }

    /// A setting was out of range (for example a lease shorter than the handler timeout).
    pub fn is_invalid_setting(&self) -> bool {
        matches!(self.kind, BuildErrorKind::InvalidSetting(_))
    }
}

impl fmt::Display for BuildError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            BuildErrorKind::NoVerification => f.write_str(
                "no verification configured: set an HMAC key or a verifier, or call \
                 `dangerously_accept_unverified_callbacks()`",
            ),
            BuildErrorKind::EmptyKey => f.write_str("an HMAC key is empty"),
            BuildErrorKind::InvalidSetting(message) => write!(f, "invalid setting: {message}"),
        }
    }
}

impl StdError for BuildError {}
