//! Every public type can cross threads (`Send`) and be shared between them (`Sync`),
//! as a tower service, its layer and its futures must in a multi-threaded server.
//! A type that stops being either fails to compile here.

use suno_callback::event::{
    CoverPayload, CreateTime, FailureReason, Instrument, LyricsPayload, LyricsVariation,
    MidiPayload, MusicPayload, Note, Payload, SeparationPayload, Stem, Track, VideoPayload,
    VoicePayload, VoiceStatus, WavPayload,
};
use suno_callback::service::{
    AnswerBody, CallbackService, ResponseFuture, SetPeerAddr, SetPeerAddrLayer, SunoCallback,
    SunoCallbackBody, SunoCallbackFuture, SunoCallbackLayer,
};
use suno_callback::store::{Claim, ClaimToken, DedupKey, MemoryStore, StoreError};
use suno_callback::testing::{FamilyCallback, MusicCallback, Signer, TaskIdAt, TestTrack};
use suno_callback::verify::{
    AllOf, AnyOf, HmacVerifier, InvalidIpRange, IpAllowlist, ManualClock, SystemClock, VerifyError,
    VerifyRequest,
};
use suno_callback::{
    BuildError, CallbackEvent, Family, HandlerError, Outcome, ParseError, PeerAddr, Route, Stage,
    SunoCallbacks, SunoCallbacksBuilder,
};

fn send_sync<T: Send + Sync>() {}
fn send<T: Send>() {}

/// A `Send + Sync` stand-in for a wrapped service, future or body.
type Inner = std::future::Ready<()>;

#[test]
fn public_types_are_send_and_sync() {
    send_sync::<SunoCallbacks>();
    send_sync::<SunoCallbacksBuilder>();
    send_sync::<BuildError>();
    send_sync::<HandlerError>();
    send_sync::<PeerAddr>();

    send_sync::<CallbackEvent>();
    send_sync::<Family>();
    send_sync::<Outcome>();
    send_sync::<Route>();
    send_sync::<Payload>();
    send_sync::<MusicPayload>();
    send_sync::<LyricsPayload>();
    send_sync::<LyricsVariation>();
    send_sync::<WavPayload>();
    send_sync::<SeparationPayload>();
    send_sync::<Stem>();
    send_sync::<MidiPayload>();
    send_sync::<Instrument>();
    send_sync::<Note>();
    send_sync::<VideoPayload>();
    send_sync::<CoverPayload>();
    send_sync::<VoicePayload>();
    send_sync::<VoiceStatus>();
    send_sync::<FailureReason>();
    send_sync::<Stage>();
    send_sync::<Track>();
    send_sync::<CreateTime>();
    send_sync::<ParseError>();

    send_sync::<CallbackService>();
    send_sync::<SunoCallbackLayer>();
    send_sync::<SunoCallback<Inner>>();
    send_sync::<SetPeerAddrLayer>();
    send_sync::<SetPeerAddr<Inner>>();
    send_sync::<AnswerBody>();
    send_sync::<SunoCallbackBody<AnswerBody>>();

    send_sync::<MemoryStore>();
    send_sync::<DedupKey>();
    send_sync::<ClaimToken>();
    send_sync::<Claim>();
    send_sync::<StoreError>();

    send_sync::<HmacVerifier>();
    send_sync::<IpAllowlist>();
    send_sync::<InvalidIpRange>();
    send_sync::<AllOf<HmacVerifier, IpAllowlist>>();
    send_sync::<AnyOf<HmacVerifier, IpAllowlist>>();
    send_sync::<VerifyError>();
    send_sync::<VerifyRequest<'static>>();
    send_sync::<SystemClock>();
    send_sync::<ManualClock>();

    send_sync::<Signer>();
    send_sync::<MusicCallback>();
    send_sync::<FamilyCallback>();
    send_sync::<TestTrack>();
    send_sync::<TaskIdAt>();
}

#[test]
fn response_futures_are_send() {
    // Futures are polled by one task at a time; `Send` is what servers need.
    send::<ResponseFuture>();
    send::<SunoCallbackFuture<Inner>>();
}

#[cfg(feature = "redis")]
#[test]
fn redis_types_are_send_and_sync() {
    send_sync::<suno_callback::store::RedisStore>();
    send_sync::<suno_callback::store::RedisStoreBuilder>();
}

#[cfg(feature = "actix")]
#[test]
fn actix_types_are_send_and_sync() {
    send_sync::<suno_callback::actix::CallbackHandler>();
}
