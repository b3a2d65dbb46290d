//! Any bytes as a callback body on the shared path: `CallbackEvent::from_json` never
//! panics, and what it accepts answers every accessor, its payload included.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suno_callback::CallbackEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = CallbackEvent::from_json(bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = (
        event.task_id(),
        event.family(),
        event.stage().as_str(),
        event.outcome(),
        event.code(),
        event.msg(),
        event.reason(),
        event.error_detail(),
        event.tracks().len(),
    );
    assert_eq!(&event.raw_body()[..], data);
    // Whatever the typed parse accepted, the JSON value reads too.
    assert!(!event.raw_json().is_null());
    let _ = format!("{:?}", event.payload());
});
