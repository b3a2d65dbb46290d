//! The receiver as a layer around an existing service.

use std::sync::Arc;
use std::task::{Context, Poll};

use http::{Request, Response};
use http_body::Body;
use tower_layer::Layer;
use tower_service::Service;

use super::body::SunoCallbackBody;
use super::future::SunoCallbackFuture;
use super::service::CallbackService;
use crate::error::BoxError;

/// A layer that answers callbacks on one path and one segment below it
/// (`/callbacks/suno/wav`, ...), and passes every other request to the wrapped
/// service. Made by [`SunoCallbacks::layer_at`](crate::SunoCallbacks::layer_at), whose
/// docs say which paths it answers and how to mount it inside axum's `Router::nest`.
///
/// ```
/// use axum::{Router, routing::get};
/// # use suno_callback::SunoCallbacks;
/// # let callbacks = SunoCallbacks::builder().hmac_key("k").build()?;
/// let app: Router = Router::new()
///     .route("/health", get(|| async { "ok" }))
///     .layer(callbacks.layer_at("/callbacks/suno"));
/// # Ok::<(), suno_callback::BuildError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SunoCallbackLayer {
    path: Arc<str>,
    callbacks: CallbackService,
}

impl SunoCallbackLayer {
    pub(crate) fn new(path: String, callbacks: CallbackService) -> Self {
        Self {
            path: path.into(),
            callbacks,
        }
    }
}

impl<S> Layer<S> for SunoCallbackLayer {
    type Service = SunoCallback<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SunoCallback {
            inner,
            path: Arc::clone(&self.path),
            callbacks: self.callbacks.clone(),
        }
    }
}

/// A service answering callbacks on one path and passing the rest to `S`, built by
/// [`SunoCallbackLayer`]. `poll_ready` is the inner service's.
///
/// ```
/// use std::convert::Infallible;
/// use tower_layer::Layer;
/// # use suno_callback::SunoCallbacks;
/// # let callbacks = SunoCallbacks::builder().hmac_key("k").build()?;
/// let inner = tower::service_fn(|_: http::Request<String>| async {
///     Ok::<_, Infallible>(http::Response::new(String::new()))
/// });
/// let mut service = callbacks.layer_at("/callbacks/suno").layer(inner);
/// let _inner = service.get_mut();
/// # Ok::<(), suno_callback::BuildError>(())
/// ```
#[derive(Clone, Debug)]
pub struct SunoCallback<S> {
    inner: S,
    path: Arc<str>,
    callbacks: CallbackService,
}

impl<S> SunoCallback<S> {
    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The wrapped service, consuming the wrapper.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B, ResBody> Service<Request<B>> for SunoCallback<S>
where
    S: Service<Request<B>, Response = Response<ResBody>>,
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<SunoCallbackBody<ResBody>>;
    type Error = S::Error;
    type Future = SunoCallbackFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        if answers(&self.path, request.uri().path()) {
            SunoCallbackFuture::callback(self.callbacks.call(request))
        } else {
            SunoCallbackFuture::inner(self.inner.call(request))
        }
    }
}

/// Whether a layer at `base` answers `path`: `base` itself, or `base/<segment>` for any
/// one segment (an empty one too, as axum's `{segment}/` route matches `base//`); one
/// trailing slash on either side is ignored.
///
/// Any segment, not only a family name: the routed service (`{family}` routes,
/// `nest_service`) and the actix handler answer every segment, typing a request by the
/// family its last segment names and by its shape otherwise. A `callBackUrl` with a
/// family this version does not know, or a typo, is then received as on the shared
/// path by every mounting, instead of `404` three times and lost.
fn answers(base: &str, path: &str) -> bool {
    let base = base.strip_suffix('/').unwrap_or(base);
    let path = path.strip_suffix('/').unwrap_or(path);
    match path.strip_prefix(base) {
        Some("") => true,
        Some(rest) => rest
            .strip_prefix('/')
            .is_some_and(|segment| !segment.contains('/')),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::answers;

    #[test]
    fn answers_the_base_and_one_segment_below_it() {
        assert!(answers("/callbacks/suno", "/callbacks/suno"));
        assert!(answers("/callbacks/suno", "/callbacks/suno/wav"));
        assert!(answers("/callbacks/suno", "/callbacks/suno/voice"));
        // As the routed service and the actix handler do: typed by the body's shape.
        assert!(answers("/callbacks/suno", "/callbacks/suno/unknown"));
        assert!(answers("/callbacks/suno", "/callbacks/suno/bogus"));
        assert!(!answers("/callbacks/suno", "/callbacks/suno/wav/x"));
        assert!(!answers("/callbacks/suno", "/callbacks/sunowav"));
        assert!(!answers("/callbacks/suno", "/other"));
    }

    #[test]
    fn a_trailing_slash_on_either_side_still_matches() {
        // A `callBackUrl` written with a trailing slash must not get 404 three times.
        assert!(answers("/callbacks/suno", "/callbacks/suno/"));
        assert!(answers("/callbacks/suno", "/callbacks/suno/wav/"));
        assert!(answers("/callbacks/suno/", "/callbacks/suno/wav"));
        assert!(answers("/callbacks/suno/", "/callbacks/suno"));
        assert!(answers("/callbacks/suno", "/callbacks/suno//"));
        assert!(!answers("/callbacks/suno", "/callbacks/suno///"));
        assert!(!answers("/callbacks/suno", "/callbacks/suno/wav/x/"));
    }
}
