//! Receive the callbacks of the Suno music API (as served by Kie AI and sunoapi.org)
//! as a tower [`Service`](tower_service::Service) or [`Layer`](tower_layer::Layer):
//! verify the request's source, dedupe by `(task_id, family, stage, outcome)` through
//! a pluggable store, and dispatch typed events of every callback family (music,
//! lyrics, WAV, separation, MIDI, video, cover, voice) to your handlers, exactly once
//! each.
//!
//! ```no_run
//! use suno_callback::SunoCallbacks;
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let callbacks = SunoCallbacks::builder()
//!     .hmac_key(std::env::var("SUNO_WEBHOOK_HMAC_KEY")?) // call again to rotate keys
//!     .on_text(|ev| async move { println!("lyrics ready for {}", ev.task_id()); Ok(()) })
//!     .on_first(|ev| async move { println!("first track of {}", ev.task_id()); Ok(()) })
//!     .on_complete(|ev| async move {
//!         for track in ev.tracks() {
//!             println!("{:?} {:?}", track.title(), track.audio_url());
//!         }
//!         Ok(())
//!     })
//!     .on_failure(|ev| async move { eprintln!("{} {}: {:?} ({:?})", ev.family(), ev.task_id(), ev.reason(), ev.msg()); Ok(()) })
//!     .build()?;
//! let app = axum::Router::new().route_service("/callbacks/suno", callbacks.service());
//! // or, around an existing app: existing_router.layer(callbacks.layer_at("/callbacks/suno"))
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:3000").await?;
//! axum::serve(listener, app).await?;
//! # Ok(()) }
//! ```
//!
//! The request goes through these stages, each in its own module, and the first that
//! refuses it decides the answer:
//!
//! | stage | module | refusal |
//! |---|---|---|
//! | method, content type, body size | `pipeline::intake` | 405 / 415 / 413 |
//! | read the envelope (task id, family, stage, code) | `event::envelope` | 400 |
//! | verify the source, bind the signature to its first use | [`verify`] | 401 |
//! | claim the dedup key | `pipeline::claim`, [`store`] | 200 duplicate / 409 / 503 |
//! | build the typed event, run the handler | [`CallbackEvent`], `pipeline::dispatch` | 500 (claim released) |
//! | complete or release the key | `pipeline::settle` | |
//!
//! In inbox mode (features `sqlite`, `postgres`, module `inbox`) stage 4 stores the
//! verified callback in a database table and answers `200 accepted`; the inbox's
//! workers run stages 5 and 6 from there, with retries.
//!
//! The README has the whole table of answers and the configuration defaults; the
//! [`metrics`] module lists what the receiver counts, through the `metrics` facade.

// The other lints are in the `[lints]` table of Cargo.toml.
#![warn(unreachable_pub)]
#![warn(clippy::missing_errors_doc)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod answer;
mod batches;
mod deadline;
mod detach;
mod error;
pub mod event;
mod pipeline;
mod receiver;
mod source;
mod timing;
mod untrusted;

#[cfg(all(feature = "console", any(feature = "sqlite", feature = "postgres")))]
#[cfg_attr(
    docsrs,
    doc(cfg(all(feature = "console", any(feature = "sqlite", feature = "postgres"))))
)]
pub mod console;
#[cfg(any(feature = "sqlite", feature = "postgres"))]
#[cfg_attr(docsrs, doc(cfg(any(feature = "sqlite", feature = "postgres"))))]
pub mod inbox;
pub mod metrics;
pub mod service;
pub mod store;
pub mod verify;

#[cfg(feature = "provider-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "provider-api")))]
pub mod provider;

#[cfg(feature = "actix")]
#[cfg_attr(docsrs, doc(cfg(feature = "actix")))]
pub mod actix;

#[cfg(feature = "testing")]
#[cfg_attr(docsrs, doc(cfg(feature = "testing")))]
pub mod testing;

/// The README's examples compile as doctests.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
struct ReadmeDoctests;

pub use crate::error::{BoxError, BuildError, HandlerError};
pub use crate::event::{ApiRoute, CallbackEvent, Family, Outcome, ParseError, Stage};
pub use crate::pipeline::dispatch::Route;
pub use crate::pipeline::intake::{DEFAULT_BODY_LIMIT, PeerAddr};
pub use crate::receiver::{
    DEFAULT_CLAIM_LEASE, DEFAULT_DONE_TTL, DEFAULT_HANDLER_TIMEOUT, DEFAULT_IN_FLIGHT_WAIT,
    DEFAULT_STORE_TIMEOUT, SunoCallbacks, SunoCallbacksBuilder,
};
pub use crate::source::EventSource;
