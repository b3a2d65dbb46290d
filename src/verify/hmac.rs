//! The sender's documented signature: `X-Webhook-Signature` =
//! `base64(HMAC-SHA256(key, task_id + "." + X-Webhook-Timestamp))`.

use std::fmt;
use std::future::{Future, ready};
use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use hmac::{Hmac, KeyInit, Mac};
use http::HeaderName;
use sha2::Sha256;

use super::{Clock, SystemClock, Verifier, VerifyError, VerifyRequest};
use crate::error::BuildError;

/// The header carrying the signature.
pub const SIGNATURE_HEADER: HeaderName = HeaderName::from_static("x-webhook-signature");
/// The header carrying the Unix time (seconds) the request was sent at.
pub const TIMESTAMP_HEADER: HeaderName = HeaderName::from_static("x-webhook-timestamp");
/// How far the timestamp may be from the receiver's clock, either way, by default:
/// 30 minutes. The sender retries a failed delivery after 1, 5 and 15 minutes, and
/// does not document whether a retry is signed anew; a retry that reuses its first
/// attempt's headers arrives about 21 minutes after their timestamp, and is still
/// accepted. A reused signature cannot carry another callback's body (the receiver
/// binds it to its first use), so the wide window costs little; narrow it with
/// [`HmacVerifier::tolerance`] or `SunoCallbacksBuilder::timestamp_tolerance` if the
/// sender is known to sign each retry anew.
pub const DEFAULT_TOLERANCE: Duration = Duration::from_secs(30 * 60);

type HmacSha256 = Hmac<Sha256>;

/// Computes the signature the sender puts in `X-Webhook-Signature` for a task id and
/// the exact text of `X-Webhook-Timestamp`.
///
/// ```
/// // The first vector of tests/fixtures/signature_vectors.json.
/// let signature = suno_callback::verify::sign(
///     b"test-webhook-hmac-key",
///     "ee9c2715375b7837f8bb51d641ff5863",
///     "1769670760",
/// );
/// assert_eq!(signature, "xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4=");
/// ```
pub fn sign(key: &[u8], task_id: &str, timestamp: &str) -> String {
    let mut mac = keyed(key);
    mac.update(task_id.as_bytes());
    mac.update(b".");
    mac.update(timestamp.as_bytes());
    STANDARD.encode(mac.finalize().into_bytes())
}

fn keyed(key: &[u8]) -> HmacSha256 {
    // HMAC takes keys of any length; `new_from_slice` cannot fail for it.
    <HmacSha256 as KeyInit>::new_from_slice(key).unwrap_or_else(|_| unreachable!())
}

/// Verifies the sender's HMAC signature with one or more active keys (for rotation),
/// a timestamp tolerance in both directions and a constant-time comparison.
///
/// ```
/// use std::time::Duration;
/// use http::HeaderMap;
/// use suno_callback::verify::{sign, HmacVerifier, ManualClock, VerifyRequest};
///
/// let verifier = HmacVerifier::new(["new-key", "old-key"])?
///     .tolerance(Duration::from_secs(60))
///     .clock(ManualClock::new(1_700_000_030));
///
/// let mut headers = HeaderMap::new();
/// headers.insert("x-webhook-timestamp", "1700000000".parse()?);
/// headers.insert("x-webhook-signature", sign(b"old-key", "task-1", "1700000000").parse()?);
/// assert!(verifier.check(&VerifyRequest::new(&headers, "task-1", "complete")).is_ok());
/// assert!(verifier.check(&VerifyRequest::new(&headers, "task-2", "complete")).is_err());
/// # Ok::<(), Box<dyn std::error::Error>>(())
/// ```
#[derive(Clone)]
pub struct HmacVerifier {
    /// Each key's HMAC state after absorbing the key, cloned per check.
    keys: Arc<[HmacSha256]>,
    tolerance_seconds: u64,
    clock: Arc<dyn Clock>,
}

impl HmacVerifier {
    /// A verifier accepting a signature made with any of `keys` (the account's "webhook
    /// HMAC key", as raw UTF-8 bytes).
    ///
    /// # Errors
    ///
    /// A [`BuildError`] when there is no key or a key is empty.
    pub fn new<I, K>(keys: I) -> Result<Self, BuildError>
    where
        I: IntoIterator<Item = K>,
        K: AsRef<[u8]>,
    {
        let keys = keys
            .into_iter()
            .map(|key| match key.as_ref() {
                [] => Err(BuildError::empty_key()),
                bytes => Ok(keyed(bytes)),
            })
            .collect::<Result<Arc<[_]>, _>>()?;
        if keys.is_empty() {
            return Err(BuildError::empty_key());
        }
        Ok(Self {
            keys,
            tolerance_seconds: DEFAULT_TOLERANCE.as_secs(),
            clock: Arc::new(SystemClock),
        })
    }

    /// How far `X-Webhook-Timestamp` may be from now, in either direction (default
    /// [`DEFAULT_TOLERANCE`], 30 minutes), in whole seconds (a fraction is dropped). A
    /// timestamp exactly at the bound is accepted.
    #[must_use]
    pub fn tolerance(mut self, tolerance: Duration) -> Self {
        self.tolerance_seconds = tolerance.as_secs();
        self
    }

    /// The clock the timestamp is compared with (default [`SystemClock`]).
    #[must_use]
    pub fn clock(mut self, clock: impl Clock) -> Self {
        self.clock = Arc::new(clock);
        self
    }

    pub(crate) fn shared_clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = clock;
        self
    }

    /// The check itself, without the future around it.
    ///
    /// # Errors
    ///
    /// A [`VerifyError`] (answered `401`) when a signature header is missing or
    /// malformed, the timestamp is further from now than the tolerance, or the
    /// signature matches no key.
    pub fn check(&self, request: &VerifyRequest<'_>) -> Result<(), VerifyError> {
        let headers = request.headers();
        let signature = headers
            .get(SIGNATURE_HEADER)
            .ok_or(VerifyError::missing_header(&SIGNATURE_HEADER))?;
        let timestamp = headers
            .get(TIMESTAMP_HEADER)
            .ok_or(VerifyError::missing_header(&TIMESTAMP_HEADER))?
            .as_bytes();
        let sent_at = parse_unix_seconds(timestamp)
            .ok_or(VerifyError::malformed_header(&TIMESTAMP_HEADER))?;
        if self.clock.unix_seconds().abs_diff(sent_at) > self.tolerance_seconds {
            return Err(VerifyError::stale_timestamp());
        }
        // 32 bytes encode to 44 characters; a buffer with room for more lets an
        // over-long signature decode and fail the length check instead of erroring.
        let mut provided = [0u8; 48];
        let length = STANDARD
            .decode_slice(signature.as_bytes(), &mut provided)
            .map_err(|_| VerifyError::malformed_header(&SIGNATURE_HEADER))?;
        if length != 32 {
            return Err(VerifyError::bad_signature());
        }
        let matched = self.keys.iter().any(|key| {
            let mut mac = key.clone();
            mac.update(request.task_id().as_bytes());
            mac.update(b".");
            mac.update(timestamp);
            mac.verify_slice(&provided[..32]).is_ok()
        });
        if matched {
            request.mark_signed();
            Ok(())
        } else {
            Err(VerifyError::bad_signature())
        }
    }
}

/// Unix seconds from the header's text: ASCII digits only, at most 18 of them.
pub(crate) fn parse_unix_seconds(text: &[u8]) -> Option<i64> {
    if text.is_empty() || text.len() > 18 || !text.iter().all(u8::is_ascii_digit) {
        return None;
    }
    text.iter()
        .try_fold(0i64, |acc, digit| Some(acc * 10 + i64::from(digit - b'0')))
}

impl Verifier for HmacVerifier {
    fn verify(
        &self,
        request: &VerifyRequest<'_>,
    ) -> impl Future<Output = Result<(), VerifyError>> + Send {
        ready(self.check(request))
    }
}

impl fmt::Debug for HmacVerifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HmacVerifier")
            .field("keys", &format_args!("[redacted; {}]", self.keys.len()))
            .field("tolerance_seconds", &self.tolerance_seconds)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamp_parsing_accepts_digits_only() {
        assert_eq!(parse_unix_seconds(b"1700000000"), Some(1_700_000_000));
        for bad in [&b""[..], b"-5", b"17e8", b" 1", b"1234567890123456789"] {
            assert_eq!(parse_unix_seconds(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn debug_never_shows_a_key() {
        let verifier = HmacVerifier::new(["super-secret-key"]).expect("valid key");
        let printed = format!("{verifier:?}");
        assert!(!printed.contains("super-secret"), "{printed}");
        assert!(printed.contains("redacted; 1"), "{printed}");
    }

    #[test]
    fn empty_keys_are_refused() {
        assert!(HmacVerifier::new([""]).expect_err("empty").is_empty_key());
        let none: [&str; 0] = [];
        assert!(HmacVerifier::new(none).expect_err("no key").is_empty_key());
    }
}
