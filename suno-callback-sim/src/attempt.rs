//! What one delivery attempt is, shared by the sender and the report (a leaf: it
//! imports neither): the answer it got, which copy it was, what follows it, and how
//! durations print.

use std::time::Duration;

use http::StatusCode;

/// What one attempt got back.
#[derive(Debug)]
pub(crate) enum Answer {
    /// An HTTP answer, with the body's `status` field when it is JSON with one.
    Http {
        status: StatusCode,
        label: Option<String>,
    },
    /// No HTTP answer in time: a connection error or the timeout.
    Error(String),
}

impl Answer {
    /// The sender's rule: only 200 is a success.
    pub(crate) fn is_success(&self) -> bool {
        matches!(self, Self::Http { status, .. } if *status == StatusCode::OK)
    }
}

/// Which copy of a callback a delivery is.
#[derive(Clone, Copy, Debug)]
pub(crate) struct CopyNo {
    pub(crate) copy: u32,
    pub(crate) of: u32,
}

/// What happens after an attempt.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Next {
    Done,
    RetryIn(Duration),
    GiveUp,
}

/// `1.5 s`, `600 ms`.
pub(crate) fn seconds(duration: Duration) -> String {
    if duration >= Duration::from_secs(1) {
        format!("{:.1} s", duration.as_secs_f64())
    } else if duration >= Duration::from_millis(10) {
        format!("{} ms", duration.as_millis())
    } else {
        format!("{:.1} ms", duration.as_secs_f64() * 1000.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_200_is_a_success() {
        let http = |code: u16| Answer::Http {
            status: StatusCode::from_u16(code).expect("status"),
            label: None,
        };
        assert!(http(200).is_success());
        for code in [201, 204, 409, 500, 503] {
            assert!(!http(code).is_success(), "{code}");
        }
        assert!(!Answer::Error("refused".into()).is_success());
    }

    #[test]
    fn durations_print_short() {
        assert_eq!(seconds(Duration::from_millis(600)), "600 ms");
        assert_eq!(seconds(Duration::from_secs(900)), "900.0 s");
        assert_eq!(seconds(Duration::from_micros(1300)), "1.3 ms");
    }
}
