//! Every vector of `tests/fixtures/signature_vectors.json`, through `sign` and through
//! the verifier.

mod common;

use http::HeaderMap;
use suno_callback::verify::{HmacVerifier, ManualClock, VerifyRequest, sign};

struct Vector {
    key: String,
    task_id: String,
    timestamp: String,
    message: String,
    signature: String,
}

fn vectors() -> Vec<Vector> {
    let json: serde_json::Value =
        serde_json::from_slice(&common::fixture("signature_vectors.json")).expect("json");
    let field = |v: &serde_json::Value, name: &str| -> String {
        v[name]
            .as_str()
            .unwrap_or_else(|| panic!("{name}"))
            .to_owned()
    };
    let vectors: Vec<Vector> = json
        .as_array()
        .expect("array")
        .iter()
        .map(|v| Vector {
            key: field(v, "key"),
            task_id: field(v, "task_id"),
            timestamp: field(v, "timestamp"),
            message: field(v, "message"),
            signature: field(v, "signature"),
        })
        .collect();
    assert!(vectors.len() >= 4, "vectors loaded: {}", vectors.len());
    vectors
}

#[test]
fn sign_reproduces_every_vector() {
    for v in vectors() {
        assert_eq!(v.message, format!("{}.{}", v.task_id, v.timestamp));
        assert_eq!(
            sign(v.key.as_bytes(), &v.task_id, &v.timestamp),
            v.signature,
            "{}",
            v.message
        );
    }
}

#[test]
fn the_verifier_accepts_every_vector_and_refuses_it_altered() {
    for v in vectors() {
        let sent_at: i64 = v.timestamp.parse().expect("timestamp");
        let verifier = HmacVerifier::new([v.key.as_bytes()])
            .expect("key")
            .clock(ManualClock::new(sent_at));
        let mut headers = HeaderMap::new();
        headers.insert("x-webhook-timestamp", v.timestamp.parse().expect("header"));
        headers.insert("x-webhook-signature", v.signature.parse().expect("header"));
        let request = VerifyRequest::new(&headers, &v.task_id, "complete");
        assert_eq!(verifier.check(&request), Ok(()), "{}", v.message);

        let other_task = format!("{}x", v.task_id);
        let refused = verifier
            .check(&VerifyRequest::new(&headers, &other_task, "complete"))
            .expect_err("another task id");
        assert!(refused.is_bad_signature(), "{}", v.message);

        let wrong_key = HmacVerifier::new([format!("{}-other", v.key)])
            .expect("key")
            .clock(ManualClock::new(sent_at));
        assert!(wrong_key.check(&request).is_err(), "{}", v.message);
    }
}
