//! Signing requests the way the sender does.

use std::fmt;

use bytes::Bytes;
use http::header::CONTENT_TYPE;
use http::{HeaderName, HeaderValue, Request};
use http_body_util::Full;

use crate::verify::{Clock, SIGNATURE_HEADER, SystemClock, TIMESTAMP_HEADER, sign};

/// Signs callback requests the way the sender does: `X-Webhook-Timestamp` is the Unix
/// time in seconds, `X-Webhook-Signature` is
/// `base64(HMAC-SHA256(key, task_id + "." + timestamp))`.
///
/// ```
/// use suno_callback::testing::Signer;
///
/// let signer = Signer::new("test-webhook-hmac-key");
/// let [(_, timestamp), (_, signature)] =
///     signer.headers_at("ee9c2715375b7837f8bb51d641ff5863", 1769670760);
/// assert_eq!(timestamp, "1769670760");
/// assert_eq!(signature, "xG6/yOyrMyJtUdc1yjmHpKLHSHF3MpzOPa6uxSj3qb4=");
/// ```
///
/// Its `Debug` output never shows the key.
#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    /// A signer using `key` (raw UTF-8 bytes, like the receiver).
    pub fn new(key: impl AsRef<[u8]>) -> Self {
        Self {
            key: key.as_ref().to_vec(),
        }
    }

    /// The timestamp and signature headers for `task_id`, sent at `unix_seconds`.
    pub fn headers_at(&self, task_id: &str, unix_seconds: i64) -> [(HeaderName, HeaderValue); 2] {
        let timestamp = unix_seconds.to_string();
        let signature = sign(&self.key, task_id, &timestamp);
        [
            (TIMESTAMP_HEADER, header_value(timestamp)),
            (SIGNATURE_HEADER, header_value(signature)),
        ]
    }

    /// The timestamp and signature headers for a callback `body`, sent at
    /// `unix_seconds`. The task id is read from the body the way the receiver reads it
    /// (`""` if it has none).
    ///
    /// ```
    /// use suno_callback::testing::{MusicCallback, Signer};
    ///
    /// let body = MusicCallback::complete("ee9c2715375b7837f8bb51d641ff5863").body();
    /// let signer = Signer::new("test-webhook-hmac-key");
    /// assert_eq!(
    ///     signer.headers_for_body_at(&body, 1769670760),
    ///     signer.headers_at("ee9c2715375b7837f8bb51d641ff5863", 1769670760),
    /// );
    /// ```
    pub fn headers_for_body_at(
        &self,
        body: &[u8],
        unix_seconds: i64,
    ) -> [(HeaderName, HeaderValue); 2] {
        let task_id = crate::event::Envelope::parse(body, None)
            .map(|envelope| envelope.task_id)
            .unwrap_or_default();
        self.headers_at(&task_id, unix_seconds)
    }

    /// A signed `POST` of `body` to `uri`, timestamped now. The task id is read from
    /// the body the way the receiver reads it (`""` if it has none).
    ///
    /// ```
    /// use suno_callback::testing::{MusicCallback, Signer};
    ///
    /// let request = Signer::new("key").request("/callbacks/suno", MusicCallback::text("t1").body());
    /// assert!(request.headers().contains_key("x-webhook-signature"));
    /// ```
    pub fn request(&self, uri: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
        self.request_at(uri, body, SystemClock.unix_seconds())
    }

    /// A signed `POST` of `body` to `uri`, timestamped `unix_seconds`: pass a time in
    /// the past to play a stale signature.
    pub fn request_at(
        &self,
        uri: &str,
        body: impl Into<Bytes>,
        unix_seconds: i64,
    ) -> Request<Full<Bytes>> {
        let body = body.into();
        let headers = self.headers_for_body_at(&body, unix_seconds);
        let mut request = unsigned_request(uri, body);
        for (name, value) in headers {
            request.headers_mut().insert(name, value);
        }
        request
    }
}

/// A `POST` of `body` to `uri` with `Content-Type: application/json` and no signature.
/// A `uri` that does not parse becomes `/`.
///
/// ```
/// use suno_callback::testing::unsigned_request;
///
/// let request = unsigned_request("/callbacks/suno", "{}");
/// assert_eq!(request.method(), "POST");
/// assert_eq!(request.headers()["content-type"], "application/json");
/// ```
pub fn unsigned_request(uri: &str, body: impl Into<Bytes>) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::new(body.into()));
    *request.method_mut() = http::Method::POST;
    *request.uri_mut() = uri.parse().unwrap_or_else(|_| http::Uri::from_static("/"));
    request
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    request
}

/// Timestamps are digits and signatures base64: always valid header values.
fn header_value(text: String) -> HeaderValue {
    HeaderValue::try_from(text).unwrap_or_else(|_| HeaderValue::from_static(""))
}

impl fmt::Debug for Signer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Signer")
            .field("key", &"[redacted]")
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::Signer;

    #[test]
    fn debug_never_shows_the_key() {
        let shown = format!("{:?}", Signer::new("super-secret-key"));
        assert!(!shown.contains("super-secret-key"), "{shown}");
        assert!(shown.contains("redacted"), "{shown}");
    }
}
