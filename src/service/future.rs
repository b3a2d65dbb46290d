//! Response futures.

use std::convert::Infallible;
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, ready};

use http::Response;
use pin_project_lite::pin_project;

use super::body::{AnswerBody, SunoCallbackBody};

/// The future of a [`CallbackService`](super::CallbackService) call.
pub struct ResponseFuture {
    inner: Pin<Box<dyn Future<Output = Response<AnswerBody>> + Send>>,
}

impl ResponseFuture {
    pub(crate) fn new(inner: impl Future<Output = Response<AnswerBody>> + Send + 'static) -> Self {
        Self {
            inner: Box::pin(inner),
        }
    }
}

impl Future for ResponseFuture {
    type Output = Result<Response<AnswerBody>, Infallible>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.inner.as_mut().poll(cx).map(Ok)
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}

pin_project! {
    /// The future of a [`SunoCallback`](super::SunoCallback) call.
    #[derive(Debug)]
    pub struct SunoCallbackFuture<F> {
        #[pin]
        kind: FutureKind<F>,
    }
}

pin_project! {
    #[project = FutureKindProj]
    #[derive(Debug)]
    enum FutureKind<F> {
        Callback { #[pin] future: ResponseFuture },
        Inner { #[pin] future: F },
    }
}

impl<F> SunoCallbackFuture<F> {
    pub(crate) fn callback(future: ResponseFuture) -> Self {
        Self {
            kind: FutureKind::Callback { future },
        }
    }

    pub(crate) fn inner(future: F) -> Self {
        Self {
            kind: FutureKind::Inner { future },
        }
    }
}

impl<F, B, E> Future for SunoCallbackFuture<F>
where
    F: Future<Output = Result<Response<B>, E>>,
{
    type Output = Result<Response<SunoCallbackBody<B>>, E>;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match self.project().kind.project() {
            FutureKindProj::Callback { future } => match ready!(future.poll(cx)) {
                Ok(response) => Poll::Ready(Ok(response.map(SunoCallbackBody::callback))),
                Err(never) => match never {},
            },
            FutureKindProj::Inner { future } => {
                let response = ready!(future.poll(cx))?;
                Poll::Ready(Ok(response.map(SunoCallbackBody::inner)))
            }
        }
    }
}
