//! Mounting the receiver in actix-web 4 (feature `actix`).
//!
//! actix-web is not tower-based: it has its own request, payload and response types,
//! built on `http` 0.2 where this crate uses `http` 1. [`CallbackHandler`] converts at
//! the edges and runs the same pipeline as the tower service, so it gives the same
//! answers and, being made from the same [`SunoCallbacks`](crate::SunoCallbacks),
//! shares its dedup store with any tower mounting in the process:
//!
//! - the method and the headers are converted by their bytes;
//! - the payload is read once, with the receiver's body limit (`413` past it), into the
//!   bytes the pipeline parses. actix's chunks are already `bytes::Bytes`, so a body
//!   that arrives in one chunk is used as it is, and one in several chunks is copied
//!   once, into one buffer;
//! - the peer address is actix's [`HttpRequest::peer_addr`], for the
//!   [`IpAllowlist`](crate::verify::IpAllowlist);
//! - the answer's status, headers and JSON body become an [`HttpResponse`].

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;

use actix_web::http::header::{HeaderMap as ActixHeaderMap, HeaderName, HeaderValue};
use actix_web::http::{Method as ActixMethod, StatusCode};
use actix_web::{Handler, HttpRequest, HttpResponse, web};
use bytes::Bytes;
use futures_util::TryStreamExt;
use futures_util::future::LocalBoxFuture;
use http_body::Frame;
use http_body_util::StreamBody;

use crate::pipeline::Pipeline;

/// The receiver as an actix-web handler. Made by
/// [`SunoCallbacks::actix_handler`](crate::SunoCallbacks::actix_handler); clones share
/// the receiver.
///
/// Mount it on the callback path for every method (`web::to`), so that the receiver
/// answers a wrong method with its own `405`:
///
/// ```
/// use actix_web::{App, web};
/// use suno_callback::SunoCallbacks;
///
/// let callbacks = SunoCallbacks::builder().hmac_key("webhook-hmac-key").build()?;
/// let handler = callbacks.actix_handler();
/// let app = App::new().route("/callbacks/suno", web::to(handler));
/// # Ok::<(), suno_callback::BuildError>(())
/// ```
///
/// Inside `HttpServer::new(move || ...)`, clone the handler for each worker's app.
#[derive(Clone)]
pub struct CallbackHandler {
    pipeline: Arc<Pipeline>,
}

impl CallbackHandler {
    pub(crate) fn new(pipeline: Arc<Pipeline>) -> Self {
        Self { pipeline }
    }
}

impl Handler<(HttpRequest, web::Payload)> for CallbackHandler {
    type Output = HttpResponse;
    type Future = LocalBoxFuture<'static, HttpResponse>;

    fn call(&self, (request, payload): (HttpRequest, web::Payload)) -> Self::Future {
        let pipeline = Arc::clone(&self.pipeline);
        let method = method(request.method());
        let headers = headers(request.headers());
        let peer: Option<SocketAddr> = request.peer_addr();
        let family = crate::event::Family::from_path(request.path());
        let body = StreamBody::new(payload.map_ok(Frame::data));
        Box::pin(async move {
            let answer = pipeline.receive(method, headers, peer, family, body).await;
            response(answer.render())
        })
    }
}

impl fmt::Debug for CallbackHandler {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackHandler")
            .field("pipeline", &self.pipeline)
            .finish()
    }
}

/// `http` 0.2 and 1 accept the same method tokens, so the conversion cannot fail; were
/// it to, any method but `POST` is answered `405` alike.
fn method(method: &ActixMethod) -> http::Method {
    http::Method::from_bytes(method.as_str().as_bytes()).unwrap_or(http::Method::GET)
}

/// Every header, each value in order. Names and values valid in `http` 0.2 are valid in
/// `http` 1; one that were not would be left out.
fn headers(from: &ActixHeaderMap) -> http::HeaderMap {
    let mut headers = http::HeaderMap::with_capacity(from.len());
    for (name, value) in from.iter() {
        if let (Ok(name), Ok(value)) = (
            http::HeaderName::from_bytes(name.as_str().as_bytes()),
            http::HeaderValue::from_bytes(value.as_bytes()),
        ) {
            headers.append(name, value);
        }
    }
    headers
}

/// The receiver's answer as an actix response: same status, headers and body.
fn response(answer: http::Response<Bytes>) -> HttpResponse {
    let (parts, body) = answer.into_parts();
    let status =
        StatusCode::from_u16(parts.status.as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let mut response = HttpResponse::with_body(status, body).map_into_boxed_body();
    let target = response.headers_mut();
    for (name, value) in &parts.headers {
        if let (Ok(name), Ok(value)) = (
            HeaderName::from_bytes(name.as_str().as_bytes()),
            HeaderValue::from_bytes(value.as_bytes()),
        ) {
            target.append(name, value);
        }
    }
    response
}

#[cfg(test)]
mod tests {
    use actix_web::body::MessageBody;

    use super::*;

    #[test]
    fn headers_keep_every_value_in_order() {
        let mut from = ActixHeaderMap::new();
        from.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("203.0.113.1"),
        );
        from.append(
            HeaderName::from_static("x-forwarded-for"),
            HeaderValue::from_static("198.51.100.2"),
        );
        from.insert(
            HeaderName::from_static("x-webhook-signature"),
            HeaderValue::from_static("c2lnbmF0dXJl"),
        );
        let converted = headers(&from);
        let forwarded: Vec<&str> = converted
            .get_all("x-forwarded-for")
            .iter()
            .filter_map(|value| value.to_str().ok())
            .collect();
        assert_eq!(forwarded, ["203.0.113.1", "198.51.100.2"]);
        assert_eq!(converted["x-webhook-signature"], "c2lnbmF0dXJl");
        assert_eq!(converted.len(), 3);
    }

    #[test]
    fn methods_convert_by_name() {
        for name in ["POST", "GET", "PATCH", "PROPFIND"] {
            let actix = ActixMethod::from_bytes(name.as_bytes()).expect("method");
            assert_eq!(method(&actix).as_str(), name);
        }
    }

    #[test]
    fn responses_keep_status_headers_and_body() {
        let answer = http::Response::builder()
            .status(http::StatusCode::CONFLICT)
            .header("content-type", "application/json")
            .header("retry-after", "5")
            .body(Bytes::from_static(br#"{"status":"in_flight"}"#))
            .expect("response");
        let converted = response(answer);
        assert_eq!(converted.status(), StatusCode::CONFLICT);
        let header = |name: &str| converted.headers().get(name).map(HeaderValue::as_bytes);
        assert_eq!(header("content-type"), Some(&b"application/json"[..]));
        assert_eq!(header("retry-after"), Some(&b"5"[..]));
        let body = converted.into_body().try_into_bytes().ok();
        assert_eq!(body.as_deref(), Some(&br#"{"status":"in_flight"}"#[..]));
    }
}
