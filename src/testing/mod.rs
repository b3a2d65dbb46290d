//! Test your callback endpoint without the real sender (feature `testing`).
//!
//! The real API cannot be made to send a callback on demand (it costs credits and
//! needs a public URL), so this module plays the sender:
//!
//! - [`MusicCallback`] builds the body of every music callback stage (`text`,
//!   `first`, `complete`) and failure code, with realistic defaults ([`TestTrack`]) and
//!   every field overridable;
//! - [`FamilyCallback`] builds a success or a failure of every other family (lyrics,
//!   WAV, separation, MIDI, video, cover, voice) in the pages' shapes, and the path of
//!   its family ([`FamilyCallback::path`]); and of every model of the jobs route
//!   ([`FamilyCallback::jobs_success`], [`FamilyCallback::jobs_failure`],
//!   [`jobs_model`]);
//! - [`Signer`] produces the sender's `X-Webhook-Timestamp` and `X-Webhook-Signature`
//!   headers for any body, key and timestamp;
//! - [`MusicCallback::signed_request`] turns one into an `http::Request` ready for
//!   `tower::ServiceExt::oneshot` (or any HTTP client);
//! - [`conformance`] is the suite every [`DedupStore`](crate::store::DedupStore) must
//!   pass, one line to run it against your own store.
//!
//! This crate's own tests and its sender simulator (the `suno-callback-sim` package)
//! are built on these, so they cannot drift from what the receiver accepts.
//!
//! ```
//! use suno_callback::{CallbackEvent, SunoCallbacks};
//! use suno_callback::testing::{MusicCallback, Signer};
//! use tower::ServiceExt;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let callbacks = SunoCallbacks::builder()
//!     .hmac_key("test-key")
//!     .on_complete(|ev| async move {
//!         assert_eq!(ev.tracks().len(), 2);
//!         Ok(())
//!     })
//!     .build()
//!     .unwrap();
//!
//! let request = MusicCallback::complete("task-1")
//!     .signed_request(&Signer::new("test-key"), "/callbacks/suno");
//! let response = callbacks.service().oneshot(request).await.unwrap();
//! assert_eq!(response.status(), 200);
//! # }
//! ```

pub mod conformance;
mod families;
mod music;
#[cfg(feature = "provider-api")]
#[cfg_attr(docsrs, doc(cfg(feature = "provider-api")))]
pub mod registry_conformance;
mod request;
mod signer;

pub use self::families::{FamilyCallback, jobs_model};
pub use self::music::{DOCUMENTED_FAILURE_CODES, MusicCallback, TaskIdAt, TestTrack, failure_msg};
pub use self::signer::{Signer, unsigned_request};
pub use crate::event::reference::{
    EnvelopeReader, EnvelopeView, envelope_readers_agree, music_payload_agrees, read_envelope,
};
