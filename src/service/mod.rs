//! Mounting the receiver in tower: [`CallbackService`] answers every request it gets;
//! [`SunoCallbackLayer`] wraps an existing service and answers only its path;
//! [`SetPeerAddrLayer`] hands the connection's peer address to the receiver where the
//! server does not (hyper without a framework).
//!
//! Rejections are responses, not errors: both services' error types pass through
//! the inner service's (or are [`Infallible`](std::convert::Infallible)).

mod body;
mod future;
mod layer;
mod peer;
#[allow(clippy::module_inception)]
mod service;

pub use self::body::{AnswerBody, SunoCallbackBody};
pub use self::future::{ResponseFuture, SunoCallbackFuture};
pub use self::layer::{SunoCallback, SunoCallbackLayer};
pub use self::peer::{SetPeerAddr, SetPeerAddrLayer};
pub use self::service::CallbackService;
