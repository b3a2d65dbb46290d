//! Handing the connection's peer address to the receiver, for servers that know it
//! but do not put it in the request (hyper without a framework).

use std::net::SocketAddr;
use std::task::{Context, Poll};

use http::Request;
use tower_layer::Layer;
use tower_service::Service;

use crate::pipeline::intake::PeerAddr;

/// A layer that inserts the connection's peer address into every request as a
/// [`PeerAddr`] extension, so that an [`IpAllowlist`](crate::verify::IpAllowlist)
/// can check it. Made once per connection, where the server accepts it.
///
/// axum needs no such layer (with feature `axum`, its `ConnectInfo` is read), nor
/// does the actix handler. With hyper alone, wrap the app per connection:
///
/// ```no_run
/// use hyper_util::rt::{TokioExecutor, TokioIo};
/// use hyper_util::server::conn::auto;
/// use hyper_util::service::TowerToHyperService;
/// use suno_callback::SunoCallbacks;
/// use suno_callback::service::SetPeerAddrLayer;
/// use tower_layer::Layer;
///
/// # async fn run(callbacks: SunoCallbacks) -> std::io::Result<()> {
/// let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
/// loop {
///     let (stream, peer) = listener.accept().await?;
///     let service = SetPeerAddrLayer::new(peer).layer(callbacks.service());
///     tokio::spawn(async move {
///         let connection = auto::Builder::new(TokioExecutor::new());
///         let _ = connection
///             .serve_connection(TokioIo::new(stream), TowerToHyperService::new(service))
///             .await;
///     });
/// }
/// # }
/// ```
#[derive(Clone, Copy, Debug)]
pub struct SetPeerAddrLayer {
    peer: SocketAddr,
}

impl SetPeerAddrLayer {
    /// A layer inserting `peer`, the address the connection was accepted from.
    pub fn new(peer: SocketAddr) -> Self {
        Self { peer }
    }
}

impl<S> Layer<S> for SetPeerAddrLayer {
    type Service = SetPeerAddr<S>;

    fn layer(&self, inner: S) -> Self::Service {
        SetPeerAddr::new(inner, self.peer)
    }
}

/// A service that inserts one connection's peer address into every request as a
/// [`PeerAddr`] extension, then calls `S`. Made by [`SetPeerAddrLayer`].
/// `poll_ready` is the inner service's.
#[derive(Clone, Debug)]
pub struct SetPeerAddr<S> {
    inner: S,
    peer: SocketAddr,
}

impl<S> SetPeerAddr<S> {
    /// Wraps `inner`, inserting `peer` into every request.
    pub fn new(inner: S, peer: SocketAddr) -> Self {
        Self { inner, peer }
    }

    /// The wrapped service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The wrapped service, consuming the wrapper.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, B> Service<Request<B>> for SetPeerAddr<S>
where
    S: Service<Request<B>>,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = S::Future;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, mut request: Request<B>) -> Self::Future {
        request.extensions_mut().insert(PeerAddr(self.peer));
        self.inner.call(request)
    }
}

#[cfg(test)]
mod tests {
    use std::convert::Infallible;
    use std::future::{Ready, ready};

    use super::*;

    /// Answers with the `PeerAddr` it found.
    struct Probe;

    impl Service<Request<()>> for Probe {
        type Response = Option<PeerAddr>;
        type Error = Infallible;
        type Future = Ready<Result<Self::Response, Infallible>>;

        fn poll_ready(&mut self, _cx: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
            Poll::Ready(Ok(()))
        }

        fn call(&mut self, request: Request<()>) -> Self::Future {
            ready(Ok(request.extensions().get::<PeerAddr>().copied()))
        }
    }

    #[tokio::test]
    async fn the_peer_address_is_inserted_into_every_request() {
        let peer: SocketAddr = "198.51.100.4:40000".parse().expect("address");
        let mut service = SetPeerAddrLayer::new(peer).layer(Probe);
        for _ in 0..2 {
            let found = service.call(Request::new(())).await;
            assert_eq!(found, Ok(Some(PeerAddr(peer))));
        }
    }
}
