//! Any bytes as a callback body, read by the crate's hand-written envelope pass and by
//! the serde-derived definition of the same envelope: both refuse it, or both find the
//! same members with the same values (or the scan alone refuses a body nested too deep
//! to build as a JSON value, a rule of its own). Then, when the body's `data` is an object, the
//! music payload's hand-written fast path and serde: when the fast path decides, it
//! decides as serde does.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suno_callback::testing::{envelope_readers_agree, music_payload_agrees};

fuzz_target!(|data: &[u8]| {
    if let Err(disagreement) = envelope_readers_agree(data) {
        panic!("the envelope readers disagree: {disagreement}");
    }
    if let Err(disagreement) = music_payload_agrees(data) {
        panic!("{disagreement}");
    }
});
