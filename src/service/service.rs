//! The receiver as a tower service.

use std::convert::Infallible;
use std::fmt;
use std::sync::Arc;
use std::task::{Context, Poll};

use futures_util::FutureExt as _;
use http::{Request, Response};
use http_body::Body;
use tower_service::Service;

use super::body::AnswerBody;
use super::future::ResponseFuture;
use crate::error::BoxError;
use crate::pipeline::Pipeline;

/// A tower service that runs every request through the callback pipeline. Always
/// ready; never fails (every rejection is a response). Made by
/// [`SunoCallbacks::service`](crate::SunoCallbacks::service).
///
/// ```
/// # use suno_callback::SunoCallbacks;
/// # let callbacks = SunoCallbacks::builder().hmac_key("k").build()?;
/// let app: axum::Router = axum::Router::new().route_service("/callbacks/suno", callbacks.service());
/// # Ok::<(), suno_callback::BuildError>(())
/// ```
#[derive(Clone)]
pub struct CallbackService {
    pipeline: Arc<Pipeline>,
}

impl CallbackService {
    pub(crate) fn new(pipeline: Arc<Pipeline>) -> Self {
        Self { pipeline }
    }
}

impl<B> Service<Request<B>> for CallbackService
where
    B: Body + Send + 'static,
    B::Data: Send,
    B::Error: Into<BoxError>,
{
    type Response = Response<AnswerBody>;
    type Error = Infallible;
    type Future = ResponseFuture;

    fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, request: Request<B>) -> Self::Future {
        let answer = Arc::clone(&self.pipeline).handle(request);
        ResponseFuture::new(answer.map(|answer| answer.render().map(AnswerBody::new)))
    }
}

impl fmt::Debug for CallbackService {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CallbackService")
            .field("pipeline", &self.pipeline)
            .finish()
    }
}
