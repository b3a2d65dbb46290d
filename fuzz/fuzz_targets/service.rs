//! The whole receiver on arbitrary requests: it never panics, answers every request
//! with a status from the table of answers, and keeps its answers short.
//!
//! Input: a flags byte, a timestamp skew byte, then the body.
//! - bit 0: `POST` (else `GET`); bit 1: `Content-Type: application/json` (else
//!   `text/plain`); bit 2: sign the body's task id with the receiver's key; bit 3:
//!   corrupt the signature; bit 4: leave the timestamp header out; bit 5: send
//!   `Content-Length`; bit 6: a `callbackType`-independent second key signs instead.
//! - skew: the timestamp is `now + skew * 16` seconds (signed).
//!
//! The receiver lives across inputs, so signatures bound by earlier inputs meet
//! later bodies, as a replayed signature would.

#![no_main]

use std::sync::OnceLock;

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::{BodyExt, Full};
use libfuzzer_sys::fuzz_target;
use suno_callback::store::MemoryStore;
use suno_callback::testing::Signer;
use suno_callback::verify::ManualClock;
use suno_callback::{HandlerError, SunoCallbacks};
use tower_service::Service;

const KEY: &str = "fuzz-webhook-hmac-key";
const NOW: i64 = 1_700_000_000;
/// How the handler's deliberate panic begins.
const HANDLER_PANIC: &str = "handler panic for";

struct Harness {
    runtime: tokio::runtime::Runtime,
    callbacks: SunoCallbacks,
}

fn harness() -> &'static Harness {
    static HARNESS: OnceLock<Harness> = OnceLock::new();
    HARNESS.get_or_init(|| {
        // libFuzzer's hook aborts on every panic, even one the receiver catches; the
        // handler's deliberate panic must be caught (answered 500), anything else is a
        // crash.
        let abort_on_panic = std::panic::take_hook();
        std::panic::set_hook(Box::new(move |info| {
            let message = info
                .payload()
                .downcast_ref::<String>()
                .map(String::as_str)
                .or_else(|| info.payload().downcast_ref::<&str>().copied())
                .unwrap_or("");
            if !message.starts_with(HANDLER_PANIC) {
                abort_on_panic(info);
            }
        }));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_time()
            .build()
            .expect("runtime");
        let callbacks = SunoCallbacks::builder()
            .hmac_keys([KEY, "old-key"])
            .clock(ManualClock::new(NOW))
            .store(MemoryStore::with_max_entries(4096))
            .body_limit(64 * 1024)
            .on_text(|_| async { Ok(()) })
            .on_first(|ev| async move {
                if ev.tracks().len() > 3 {
                    Err(HandlerError::msg(format!("bad\nline {}", ev.task_id())))
                } else {
                    Ok(())
                }
            })
            .on_complete(|ev| async move {
                if ev.task_id().ends_with('!') {
                    panic!("{HANDLER_PANIC} {}", ev.task_id());
                }
                Ok(())
            })
            .on_failure(|_| async { Ok(()) })
            .fallback(|_| async { Ok(()) })
            .build()
            .expect("valid configuration");
        Harness { runtime, callbacks }
    })
}

fuzz_target!(|data: &[u8]| {
    let [flags, skew, body @ ..] = data else {
        return;
    };
    let harness = harness();
    let mut request = Request::builder()
        .method(if flags & 1 != 0 {
            Method::POST
        } else {
            Method::GET
        })
        .uri("/callbacks/suno")
        .header(
            "content-type",
            if flags & 2 != 0 {
                "application/json"
            } else {
                "text/plain"
            },
        );
    if flags & 32 != 0 {
        request = request.header("content-length", body.len());
    }
    if flags & 4 != 0 {
        let key = if flags & 64 != 0 { "old-key" } else { KEY };
        let sent_at = NOW + i64::from(*skew as i8) * 16;
        let [(ts_name, ts_value), (sig_name, sig_value)] =
            Signer::new(key).headers_for_body_at(body, sent_at);
        if flags & 16 == 0 {
            request = request.header(ts_name, ts_value);
        }
        if flags & 8 != 0 {
            request = request.header(sig_name, "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=");
        } else {
            request = request.header(sig_name, sig_value);
        }
    }
    let Ok(request) = request.body(Full::new(Bytes::copy_from_slice(body))) else {
        return;
    };
    let mut service = harness.callbacks.service();
    harness.runtime.block_on(async {
        let response = service
            .call(request)
            .await
            .expect("the service never errors");
        let status = response.status().as_u16();
        assert!(
            [200, 400, 401, 405, 409, 413, 415, 500, 503].contains(&status),
            "unexpected status {status}"
        );
        let answer = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        assert!(answer.len() <= 2048, "answer of {} bytes", answer.len());
        assert!(!answer.contains(&b'\n'), "raw newline in the answer");
    });
});
