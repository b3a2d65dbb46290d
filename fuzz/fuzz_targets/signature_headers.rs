//! Arbitrary `X-Webhook-Timestamp` and `X-Webhook-Signature` values and task ids:
//! `HmacVerifier` never panics, and accepts only the signature the sender's rule gives.
//!
//! Input: one byte with the length of the task id, one with the length of the
//! timestamp, then the task id, the timestamp and the signature.

#![no_main]

use std::time::Duration;

use http::{HeaderMap, HeaderValue};
use libfuzzer_sys::fuzz_target;
use suno_callback::verify::{
    HmacVerifier, ManualClock, SIGNATURE_HEADER, TIMESTAMP_HEADER, VerifyRequest, sign,
};

const KEY: &str = "fuzz-webhook-hmac-key";
const NOW: i64 = 1_700_000_000;
const TOLERANCE: u64 = 30 * 60;

fuzz_target!(|data: &[u8]| {
    let [task_len, timestamp_len, rest @ ..] = data else {
        return;
    };
    let (task_len, timestamp_len) = (usize::from(*task_len), usize::from(*timestamp_len));
    if rest.len() < task_len + timestamp_len {
        return;
    }
    let (task_id, rest) = rest.split_at(task_len);
    let (timestamp, signature) = rest.split_at(timestamp_len);
    let Ok(task_id) = std::str::from_utf8(task_id) else {
        return;
    };
    let verifier = HmacVerifier::new([KEY, "second-key"])
        .expect("valid keys")
        .tolerance(Duration::from_secs(TOLERANCE))
        .clock(ManualClock::new(NOW));
    let mut headers = HeaderMap::new();
    if let Ok(value) = HeaderValue::from_bytes(timestamp) {
        headers.insert(TIMESTAMP_HEADER, value);
    }
    if let Ok(value) = HeaderValue::from_bytes(signature) {
        headers.insert(SIGNATURE_HEADER, value);
    }
    let request = VerifyRequest::new(&headers, task_id, "complete");
    if verifier.check(&request).is_ok() {
        // Only the documented signature of an in-tolerance timestamp is accepted.
        let timestamp = std::str::from_utf8(timestamp).expect("accepted timestamps are digits");
        let expected = [
            sign(KEY.as_bytes(), task_id, timestamp),
            sign(b"second-key", task_id, timestamp),
        ];
        assert!(expected.iter().any(|s| s.as_bytes() == signature));
    }
    // The same task id and timestamp, correctly signed, are accepted when in tolerance.
    if let Ok(text) = std::str::from_utf8(timestamp)
        && let Ok(value) = HeaderValue::from_str(&sign(KEY.as_bytes(), task_id, text))
        && headers.contains_key(TIMESTAMP_HEADER)
    {
        headers.insert(SIGNATURE_HEADER, value);
        let request = VerifyRequest::new(&headers, task_id, "complete");
        let in_tolerance = text.len() <= 18
            && text.bytes().all(|b| b.is_ascii_digit())
            && text
                .parse::<i64>()
                .is_ok_and(|t| t.abs_diff(NOW) <= TOLERANCE);
        assert_eq!(verifier.check(&request).is_ok(), in_tolerance, "{text:?}");
    }
});
