//! The documented failure codes of the music callbacks.

use std::fmt;

/// Why a task failed, from the callback's `code`. Codes the docs do not list are kept
/// in [`FailureReason::Other`], so a new code never breaks parsing.
///
/// ```
/// use suno_callback::event::FailureReason;
///
/// assert_eq!(FailureReason::from_code(413), FailureReason::MatchesExistingWork);
/// assert_eq!(FailureReason::from_code(599), FailureReason::Other(599));
/// assert_eq!(FailureReason::Other(599).code(), 599);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum FailureReason {
    /// 400: the request was refused, for example lyrics with copyrighted material or a
    /// parameter that failed validation.
    InvalidRequest,
    /// 408: rate limited, or the generation timed out.
    RateLimited,
    /// 413: the uploaded audio matches an existing work.
    MatchesExistingWork,
    /// 451: the source file could not be downloaded (sunoapi.org).
    DownloadFailed,
    /// 500: an unexpected error on the sender's side.
    ServerError,
    /// 501: audio generation failed.
    GenerationFailed,
    /// 531: generation failed and the credits were refunded.
    FailedCreditsRefunded,
    /// A code the docs do not list (including `200` on a callback typed `error`).
    Other(i64),
}

impl FailureReason {
    /// The reason for a callback `code`.
    pub fn from_code(code: i64) -> Self {
        match code {
            400 => Self::InvalidRequest,
            408 => Self::RateLimited,
            413 => Self::MatchesExistingWork,
            451 => Self::DownloadFailed,
            500 => Self::ServerError,
            501 => Self::GenerationFailed,
            531 => Self::FailedCreditsRefunded,
            other => Self::Other(other),
        }
    }

    /// The callback `code` this reason stands for.
    pub fn code(self) -> i64 {
        match self {
            Self::InvalidRequest => 400,
            Self::RateLimited => 408,
            Self::MatchesExistingWork => 413,
            Self::DownloadFailed => 451,
            Self::ServerError => 500,
            Self::GenerationFailed => 501,
            Self::FailedCreditsRefunded => 531,
            Self::Other(code) => code,
        }
    }

    /// Whether submitting the same task again may succeed: true for rate limits,
    /// server errors and refunded failures; false for refusals of the input itself.
    pub fn is_transient(self) -> bool {
        matches!(
            self,
            Self::RateLimited
                | Self::ServerError
                | Self::GenerationFailed
                | Self::FailedCreditsRefunded
                | Self::DownloadFailed
        )
    }
}

impl fmt::Display for FailureReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Self::InvalidRequest => "request refused (copyrighted lyrics or invalid input)",
            Self::RateLimited => "rate limited or timed out",
            Self::MatchesExistingWork => "audio matches an existing work",
            Self::DownloadFailed => "source file could not be downloaded",
            Self::ServerError => "unexpected server error",
            Self::GenerationFailed => "audio generation failed",
            Self::FailedCreditsRefunded => "generation failed, credits refunded",
            Self::Other(code) => return write!(f, "failure code {code}"),
        };
        f.write_str(text)
    }
}

#[cfg(test)]
mod tests {
    use super::FailureReason;

    #[test]
    fn every_documented_code_round_trips() {
        for code in [400, 408, 413, 451, 500, 501, 531] {
            let reason = FailureReason::from_code(code);
            assert!(!matches!(reason, FailureReason::Other(_)), "{code}");
            assert_eq!(reason.code(), code);
        }
        assert_eq!(FailureReason::from_code(-7), FailureReason::Other(-7));
    }
}
