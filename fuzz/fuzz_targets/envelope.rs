//! Any bytes as a callback body: `CallbackEvent::from_json` never panics, and what it
//! accepts answers every accessor.

#![no_main]

use libfuzzer_sys::fuzz_target;
use suno_callback::CallbackEvent;

fuzz_target!(|data: &[u8]| {
    let Ok(event) = CallbackEvent::from_json(bytes::Bytes::copy_from_slice(data)) else {
        return;
    };
    let _ = (
        event.task_id(),
        event.stage().as_str(),
        event.code(),
        event.msg(),
    );
    let _ = event.is_failure();
    assert_eq!(&event.raw_body()[..], data);
    let _ = event.raw_json();
    match &event {
        CallbackEvent::Failure(failure) => {
            let _ = (
                failure.reason(),
                failure.error_detail(),
                failure.tracks().len(),
            );
        }
        CallbackEvent::Text(stage)
        | CallbackEvent::First(stage)
        | CallbackEvent::Complete(stage)
        | CallbackEvent::Unknown(stage) => {
            for track in stage.tracks() {
                let _ = format!("{track:?}");
            }
        }
        _ => {}
    }
});
