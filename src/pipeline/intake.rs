//! Stage 1 of the pipeline: is this a request we should read at all? Method `POST`
//! (else `405`), a JSON content type (else `415`), a body within the size limit
//! (else `413`). Also where the connection's peer address is found.

use std::net::SocketAddr;

use bytes::{Buf, BufMut, Bytes, BytesMut};
use http::header::{CONTENT_LENGTH, CONTENT_TYPE};
use http::{Extensions, HeaderMap, Method, StatusCode};
use http_body::Body;
use http_body_util::{BodyExt, LengthLimitError, Limited};

use crate::answer::Answer;
use crate::error::BoxError;

/// The body size limit by default: 1 MiB. A music callback is a few kilobytes.
pub const DEFAULT_BODY_LIMIT: usize = 1024 * 1024;

/// The connection's peer address, as a request extension.
///
/// The [`IpAllowlist`](crate::verify::IpAllowlist) reads it. Mountings that know the
/// peer insert it (with feature `axum`, axum's `ConnectInfo<SocketAddr>` is read as
/// well; with feature `actix`, the actix handler passes actix's peer address); a plain
/// hyper server inserts it per connection, for example with
/// [`SetPeerAddrLayer`](crate::service::SetPeerAddrLayer), or by hand:
///
/// ```
/// use suno_callback::PeerAddr;
///
/// let mut request = http::Request::new(());
/// request.extensions_mut().insert(PeerAddr("203.0.113.7:55000".parse().unwrap()));
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct PeerAddr(pub SocketAddr);

/// The peer address from the request's extensions, if the mounting put one there.
pub(crate) fn peer_addr(extensions: &Extensions) -> Option<SocketAddr> {
    if let Some(PeerAddr(addr)) = extensions.get::<PeerAddr>() {
        return Some(*addr);
    }
    #[cfg(feature = "axum")]
    if let Some(axum::extract::ConnectInfo(addr)) =
        extensions.get::<axum::extract::ConnectInfo<SocketAddr>>()
    {
        return Some(*addr);
    }
    None
}

/// Checks what can be checked before reading the body.
pub(crate) fn check_head(
    method: &Method,
    headers: &HeaderMap,
    body_limit: usize,
) -> Result<(), Answer> {
    if method != Method::POST {
        return Err(Answer::invalid(
            StatusCode::METHOD_NOT_ALLOWED,
            "method not allowed: callbacks are POST",
        ));
    }
    if !is_json(headers) {
        return Err(Answer::invalid(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "content type must be application/json",
        ));
    }
    let declared_length = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|text| text.parse::<u64>().ok());
    if declared_length.is_some_and(|length| length > body_limit as u64) {
        return Err(too_large());
    }
    Ok(())
}

/// `application/json`, any `+json` type, with or without parameters.
fn is_json(headers: &HeaderMap) -> bool {
    let Some(value) = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let essence = value.split(';').next().unwrap_or("").trim();
    essence.eq_ignore_ascii_case("application/json")
        || essence.rsplit_once('+').is_some_and(|(kind, suffix)| {
            kind.len() > "application/".len()
                && kind[.."application/".len()].eq_ignore_ascii_case("application/")
                && suffix.eq_ignore_ascii_case("json")
        })
}

/// Reads the whole body, refusing more than `body_limit` bytes whatever the request
/// declared. A body that arrives in one chunk is returned as that chunk, not copied;
/// from the second chunk on, chunks are copied into one buffer and released at once.
///
/// Collecting the chunks instead would keep each one alive until the end, and a chunk
/// from a server's read buffer may pin far more memory than its own length: a body sent
/// one byte per frame must not cost a buffer per byte before its signature is checked.
pub(crate) async fn read_body<B>(body: B, body_limit: usize) -> Result<Bytes, Answer>
where
    B: Body,
    B::Error: Into<BoxError>,
{
    let mut body = std::pin::pin!(Limited::new(body, body_limit));
    let mut first: Option<Bytes> = None;
    let mut joined: Option<BytesMut> = None;
    while let Some(frame) = body.frame().await {
        let frame = frame.map_err(|error| {
            if exceeds_a_limit(&*error) {
                too_large()
            } else {
                Answer::invalid(
                    StatusCode::BAD_REQUEST,
                    "the request body could not be read",
                )
            }
        })?;
        // Trailers carry nothing a callback needs.
        let Ok(mut data) = frame.into_data() else {
            continue;
        };
        if !data.has_remaining() {
            continue;
        }
        if let Some(buffer) = joined.as_mut() {
            buffer.put(data);
        } else if let Some(head) = first.take() {
            // What is still to come, as far as the body knows, within the limit.
            let expected = body.size_hint().lower();
            let capacity = (head.len() as u64 + data.remaining() as u64)
                .saturating_add(expected)
                .min(body_limit as u64) as usize;
            let mut buffer = BytesMut::with_capacity(capacity);
            buffer.extend_from_slice(&head);
            buffer.put(data);
            joined = Some(buffer);
        } else {
            // For `Bytes` (what servers give) this takes the chunk without a copy.
            first = Some(data.copy_to_bytes(data.remaining()));
        }
    }
    Ok(match (joined, first) {
        (Some(buffer), _) => buffer.freeze(),
        (None, Some(head)) => head,
        (None, None) => Bytes::new(),
    })
}

/// Whether reading stopped at a length limit: this one, or one a layer in front put on
/// the body (tower-http's `RequestBodyLimit`), which the framework may have wrapped in
/// its own error type (axum does).
fn exceeds_a_limit(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut next = Some(error);
    while let Some(error) = next {
        if error.is::<LengthLimitError>() {
            return true;
        }
        next = error.source();
    }
    false
}

fn too_large() -> Answer {
    Answer::invalid(StatusCode::PAYLOAD_TOO_LARGE, "body exceeds the size limit")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn with_content_type(value: &str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(CONTENT_TYPE, value.parse().expect("header value"));
        headers
    }

    /// An error wrapping another, as a framework wraps a body error.
    #[derive(Debug)]
    struct Wrapped(BoxError);

    impl std::fmt::Display for Wrapped {
        fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
            write!(f, "body error: {}", self.0)
        }
    }

    impl std::error::Error for Wrapped {
        fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
            Some(&*self.0)
        }
    }

    /// The error of a body read past a limit (`LengthLimitError` has no constructor).
    async fn limit_error() -> BoxError {
        let body = Limited::new(http_body_util::Full::new(Bytes::from_static(b"xx")), 1);
        body.collect().await.expect_err("over the limit")
    }

    #[tokio::test]
    async fn a_limit_met_in_front_is_found_inside_wrapping_errors() {
        assert!(limit_error().await.is::<LengthLimitError>());
        let limit = limit_error;
        assert!(exceeds_a_limit(&*limit().await));
        assert!(exceeds_a_limit(&Wrapped(limit().await)));
        assert!(exceeds_a_limit(&Wrapped(Box::new(Wrapped(limit().await)))));
        let other = Wrapped(BoxError::from("connection reset"));
        assert!(!exceeds_a_limit(&other));
    }

    #[tokio::test]
    async fn a_body_in_one_chunk_is_not_copied() {
        let chunk = Bytes::from(vec![b'x'; 4096]);
        let read = read_body(http_body_util::Full::new(chunk.clone()), 8192)
            .await
            .expect("within the limit");
        assert_eq!(read.as_ptr(), chunk.as_ptr());
    }

    #[test]
    fn json_content_types_are_recognised() {
        for accepted in [
            "application/json",
            "Application/JSON; charset=utf-8",
            "application/vnd.suno+json",
        ] {
            assert!(is_json(&with_content_type(accepted)), "{accepted}");
        }
        for refused in ["text/plain", "application/jsonx", "+json", "text/x+json"] {
            assert!(!is_json(&with_content_type(refused)), "{refused}");
        }
        assert!(!is_json(&HeaderMap::new()));
    }
}
