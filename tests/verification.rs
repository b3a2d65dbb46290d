//! Verification through the service: key rotation, tolerance edges, header case,
//! IP allowlist with the peer address, custom verifiers, and the explicit opt-out.

mod common;

use std::future::{Future, ready};
use std::time::Duration;

use common::{KEY, PATH, callback_body, send};
use http::HeaderValue;
use suno_callback::testing::{Signer, unsigned_request};
use suno_callback::verify::{
    IpAllowlist, ManualClock, Verifier, VerifierExt, VerifyError, VerifyRequest,
};
use suno_callback::{PeerAddr, SunoCallbacks, SunoCallbacksBuilder};

const NOW: i64 = 1_764_115_200;

fn receiver(builder: SunoCallbacksBuilder) -> SunoCallbacks {
    builder
        .clock(ManualClock::new(NOW))
        .on_complete(|_| async { Ok(()) })
        .build()
        .expect("valid configuration")
}

fn body(task_id: &str) -> String {
    callback_body(task_id, "complete", 200)
}

#[tokio::test]
async fn every_active_key_is_accepted_during_rotation() {
    let callbacks = receiver(
        SunoCallbacks::builder()
            .hmac_key("new-key")
            .hmac_key("old-key"),
    );
    for (n, key) in ["new-key", "old-key"].into_iter().enumerate() {
        let request = Signer::new(key).request_at(PATH, body(&format!("rot-{n}")), NOW);
        send(callbacks.service(), request)
            .await
            .expect(200, "processed");
    }
    let retired = Signer::new("retired-key").request_at(PATH, body("rot-x"), NOW);
    send(callbacks.service(), retired)
        .await
        .expect(401, "rejected");
}

#[tokio::test]
async fn tolerance_is_inclusive_at_the_bound_both_ways() {
    let callbacks = receiver(
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .timestamp_tolerance(Duration::from_secs(300)),
    );
    let cases = [
        ("exactly-300-old", NOW - 300, 200),
        ("exactly-300-ahead", NOW + 300, 200),
        ("301-old", NOW - 301, 401),
        ("301-ahead", NOW + 301, 401),
        ("now", NOW, 200),
        ("an-hour-ahead", NOW + 3600, 401),
    ];
    for (task, sent_at, status) in cases {
        let request = Signer::new(KEY).request_at(PATH, body(task), sent_at);
        let answer = send(callbacks.service(), request).await;
        assert_eq!(answer.status.as_u16(), status, "{task}: {:?}", answer.json);
        if status == 401 {
            assert_eq!(
                answer.json["reason"], "timestamp outside the tolerance",
                "{task}"
            );
        }
    }
}

#[tokio::test]
async fn a_custom_tolerance_moves_the_bound() {
    let callbacks = receiver(
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .timestamp_tolerance(Duration::from_secs(30)),
    );
    let ok = Signer::new(KEY).request_at(PATH, body("t30"), NOW - 30);
    send(callbacks.service(), ok).await.expect(200, "processed");
    let late = Signer::new(KEY).request_at(PATH, body("t31"), NOW - 31);
    send(callbacks.service(), late)
        .await
        .expect(401, "rejected");
}

#[tokio::test]
async fn lower_case_header_names_are_accepted() {
    // Over the wire, names in any case are checked in `http_loopback.rs`.
    let callbacks = receiver(SunoCallbacks::builder().hmac_key(KEY));
    let [(_, timestamp), (_, signature)] = Signer::new(KEY).headers_at("case-task", NOW);
    let mut request = unsigned_request(PATH, body("case-task"));
    let headers = request.headers_mut();
    headers.insert("x-webhook-timestamp", timestamp);
    headers.insert("x-webhook-signature", signature);
    send(callbacks.service(), request)
        .await
        .expect(200, "processed");
}

fn with_peer(
    mut request: http::Request<http_body_util::Full<bytes::Bytes>>,
    peer: &str,
) -> http::Request<http_body_util::Full<bytes::Bytes>> {
    request
        .extensions_mut()
        .insert(PeerAddr(peer.parse().expect("socket address")));
    request
}

#[tokio::test]
async fn the_ip_allowlist_reads_the_peer_address() {
    let allowlist = IpAllowlist::new(["203.0.113.0/24"]).expect("ranges");
    let callbacks = receiver(SunoCallbacks::builder().hmac_key(KEY).verifier(allowlist));
    let signer = Signer::new(KEY);

    let inside = with_peer(
        signer.request_at(PATH, body("ip-1"), NOW),
        "203.0.113.5:40000",
    );
    send(callbacks.service(), inside)
        .await
        .expect(200, "processed");

    let outside = with_peer(
        signer.request_at(PATH, body("ip-2"), NOW),
        "198.51.100.5:40000",
    );
    let answer = send(callbacks.service(), outside).await;
    answer.expect(401, "rejected");
    assert_eq!(answer.json["reason"], "source address not allowed");

    let unknown = signer.request_at(PATH, body("ip-3"), NOW);
    let answer = send(callbacks.service(), unknown).await;
    answer.expect(401, "rejected");
    assert_eq!(answer.json["reason"], "source address unknown");
}

#[tokio::test]
async fn forwarded_for_counts_only_from_trusted_proxies() {
    let allowlist = IpAllowlist::new(["203.0.113.0/24"])
        .expect("ranges")
        .trust_forwarded_for_from(["10.0.0.0/8"])
        .expect("proxies");
    let callbacks = receiver(SunoCallbacks::builder().hmac_key(KEY).verifier(allowlist));
    let signer = Signer::new(KEY);
    let forwarded = |task: &str, peer: &str| {
        let mut request = with_peer(signer.request_at(PATH, body(task), NOW), peer);
        request
            .headers_mut()
            .insert("x-forwarded-for", HeaderValue::from_static("203.0.113.9"));
        request
    };
    send(callbacks.service(), forwarded("xff-1", "10.1.1.1:5000"))
        .await
        .expect(200, "processed");
    send(callbacks.service(), forwarded("xff-2", "198.51.100.1:5000"))
        .await
        .expect(401, "rejected");
}

/// Accepts only task ids with a prefix.
struct OurTasks;

impl Verifier for OurTasks {
    fn verify(
        &self,
        request: &VerifyRequest<'_>,
    ) -> impl Future<Output = Result<(), VerifyError>> + Send {
        ready(if request.task_id().starts_with("ours-") {
            Ok(())
        } else {
            Err(VerifyError::custom("task not submitted by this service"))
        })
    }
}

#[tokio::test]
async fn every_verifier_must_accept() {
    let callbacks = receiver(SunoCallbacks::builder().hmac_key(KEY).verifier(OurTasks));
    let signer = Signer::new(KEY);
    send(
        callbacks.service(),
        signer.request_at(PATH, body("ours-1"), NOW),
    )
    .await
    .expect(200, "processed");
    let answer = send(
        callbacks.service(),
        signer.request_at(PATH, body("theirs-1"), NOW),
    )
    .await;
    answer.expect(401, "rejected");
    assert_eq!(answer.json["reason"], "task not submitted by this service");
    let unsigned = unsigned_request(PATH, body("ours-2"));
    send(callbacks.service(), unsigned)
        .await
        .expect(401, "rejected");
}

#[tokio::test]
async fn combinators_all_of_and_any_of() {
    let both = receiver(
        SunoCallbacks::builder()
            .verifier(OurTasks.and(IpAllowlist::new(["127.0.0.1"]).expect("range"))),
    );
    let local = |task: &str| with_peer(unsigned_request(PATH, body(task)), "127.0.0.1:1");
    send(both.service(), local("ours-a"))
        .await
        .expect(200, "processed");
    send(both.service(), local("theirs-a"))
        .await
        .expect(401, "rejected");
    let remote = with_peer(unsigned_request(PATH, body("ours-b")), "192.0.2.1:1");
    send(both.service(), remote).await.expect(401, "rejected");

    let either = receiver(
        SunoCallbacks::builder()
            .verifier(OurTasks.or(IpAllowlist::new(["127.0.0.1"]).expect("range"))),
    );
    send(either.service(), local("theirs-b"))
        .await
        .expect(200, "processed");
    let neither = with_peer(unsigned_request(PATH, body("theirs-c")), "192.0.2.1:1");
    send(either.service(), neither)
        .await
        .expect(401, "rejected");
}

#[tokio::test]
async fn no_verification_must_be_an_explicit_choice() {
    let refused = SunoCallbacks::builder()
        .on_complete(|_| async { Ok(()) })
        .build()
        .expect_err("no verification configured");
    assert!(refused.is_no_verification());

    let open = SunoCallbacks::builder()
        .dangerously_accept_unverified_callbacks()
        .on_complete(|_| async { Ok(()) })
        .build()
        .expect("explicit opt-out");
    send(open.service(), unsigned_request(PATH, body("open-1")))
        .await
        .expect(200, "processed");
}

#[test]
fn empty_keys_and_bad_settings_are_refused_at_build() {
    let empty = SunoCallbacks::builder()
        .hmac_key("")
        .build()
        .expect_err("empty key");
    assert!(empty.is_empty_key());
    let short_lease = SunoCallbacks::builder()
        .hmac_key(KEY)
        .handler_timeout(Duration::from_secs(10))
        .claim_lease(Duration::from_secs(10))
        .build()
        .expect_err("lease not above the timeout");
    assert!(short_lease.is_invalid_setting());
}

#[test]
fn a_done_ttl_shorter_than_a_signature_can_be_replayed_is_refused_at_build() {
    // Default tolerance 30 min: a signature may be replayed for up to 61 minutes.
    let short = SunoCallbacks::builder()
        .hmac_key(KEY)
        .done_ttl(Duration::from_secs(60 * 60))
        .build()
        .expect_err("done TTL shorter than twice the tolerance plus the margin");
    assert!(short.is_invalid_setting());
    assert!(short.to_string().contains("done TTL"), "{short}");
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .done_ttl(Duration::from_secs(61 * 60))
        .build()
        .expect("exactly long enough");
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .timestamp_tolerance(Duration::from_secs(5 * 60))
        .done_ttl(Duration::from_secs(11 * 60))
        .build()
        .expect("a narrower tolerance allows a shorter done TTL");
}

#[test]
fn debug_output_never_contains_a_key() {
    let builder = SunoCallbacks::builder().hmac_key("hunter2-secret");
    assert!(!format!("{builder:?}").contains("hunter2"));
    let callbacks = builder.build().expect("valid");
    let printed = format!(
        "{callbacks:?} {:?} {:?}",
        callbacks.service(),
        callbacks.layer_at(PATH)
    );
    assert!(!printed.contains("hunter2"), "{printed}");
    assert!(!format!("{:?}", Signer::new("hunter2-secret")).contains("hunter2"));
}
