//! What the benchmarks share: the callback they send, and the handler a careful user
//! writes by hand, which the crate is measured against.

// Each benchmark uses part of this module.
#![allow(dead_code)]

use std::collections::HashSet;
use std::hint::black_box;
use std::sync::{Mutex, PoisonError};
use std::time::{SystemTime, UNIX_EPOCH};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use http::{HeaderMap, StatusCode};
use serde_json::{Value, json};
use sha2::Sha256;
use suno_callback::{CallbackEvent, Family, HandlerError, Route, SunoCallbacks};

/// The HMAC key every benchmark signs with.
pub const KEY: &str = "bench-webhook-hmac-key";

/// The task id in the fixture, replaced to make fresh callbacks.
const FIXTURE_TASK_ID: &str = "2fac7b1e4d5a4c3f8e9d0a1b2c3d9f72";

/// A realistic `complete` callback with two tracks (1.1 kB).
pub const COMPLETE: &str =
    include_str!("../../tests/fixtures/music/add_instrumental_complete.json");

/// The `complete` callback for `task_id`.
pub fn complete_body(task_id: &str) -> Bytes {
    Bytes::from(COMPLETE.replace(FIXTURE_TASK_ID, task_id))
}

/// The fixture cut around its task id, to make fresh bodies without searching.
pub fn complete_template() -> (&'static str, &'static str) {
    let at = COMPLETE
        .find(FIXTURE_TASK_ID)
        .expect("fixture has the task id");
    (&COMPLETE[..at], &COMPLETE[at + FIXTURE_TASK_ID.len()..])
}

/// The handler a careful user writes without the crate: a `serde_json::Value` parse,
/// the timestamp and HMAC check (constant-time compare), a `Mutex<HashSet>` for dedup,
/// the same handler work as the crate's benchmarks, a JSON answer.
pub struct Naive {
    key: Vec<u8>,
    seen: Mutex<HashSet<(String, String)>>,
}

impl Naive {
    pub fn new(key: &str) -> Self {
        Self {
            key: key.as_bytes().to_vec(),
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// The answer's status and JSON body for one request.
    pub fn handle(&self, headers: &HeaderMap, body: &[u8]) -> (StatusCode, Vec<u8>) {
        let Ok(value) = serde_json::from_slice::<Value>(body) else {
            return answer(StatusCode::BAD_REQUEST, json!({"status": "invalid"}));
        };
        let data = &value["data"];
        let Some(task_id) = data["task_id"].as_str() else {
            return answer(StatusCode::BAD_REQUEST, json!({"status": "invalid"}));
        };
        let callback_type = data["callbackType"].as_str().unwrap_or("");
        if !self.signed(headers, task_id) {
            return answer(StatusCode::UNAUTHORIZED, json!({"status": "rejected"}));
        }
        let fresh = self
            .seen
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert((task_id.to_owned(), callback_type.to_owned()));
        let status = if fresh {
            // The handler: the same work as the crate's benchmark handler.
            black_box(data["data"].as_array().map_or(0, Vec::len));
            "processed"
        } else {
            "duplicate"
        };
        answer(
            StatusCode::OK,
            json!({"status": status, "task_id": task_id, "callback_type": callback_type}),
        )
    }

    fn signed(&self, headers: &HeaderMap, task_id: &str) -> bool {
        let Some(timestamp) = headers.get("x-webhook-timestamp") else {
            return false;
        };
        let Some(sent_at) = timestamp.to_str().ok().and_then(|t| t.parse::<u64>().ok()) else {
            return false;
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |since| since.as_secs());
        if now.abs_diff(sent_at) > 300 {
            return false;
        }
        let Some(signature) = headers
            .get("x-webhook-signature")
            .and_then(|value| STANDARD.decode(value.as_bytes()).ok())
        else {
            return false;
        };
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.key) else {
            return false;
        };
        mac.update(task_id.as_bytes());
        mac.update(b".");
        mac.update(timestamp.as_bytes());
        mac.verify_slice(&signature).is_ok()
    }
}

fn answer(status: StatusCode, body: Value) -> (StatusCode, Vec<u8>) {
    (status, serde_json::to_vec(&body).unwrap_or_default())
}

/// The receiver with a handler for every family's successes and failures, the music
/// stages and a fallback, as an application that takes every callback has.
pub fn receiver() -> SunoCallbacks {
    let mut builder = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_text(handler)
        .on_first(handler)
        .on_complete(handler)
        .on_failure(handler)
        .fallback(handler);
    for family in Family::ALL {
        builder = builder
            .on(Route::success(family), handler)
            .on(Route::failure(family), handler);
    }
    builder.build().expect("configuration")
}

/// Every benchmark handler's work: look at the event.
async fn handler(event: CallbackEvent) -> Result<(), HandlerError> {
    black_box((event.task_id().len(), event.tracks().len()));
    Ok(())
}
