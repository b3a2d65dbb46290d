//! The receiver behind a real axum server on a loopback port, over real HTTP.

mod common;
mod mounted;

use std::net::SocketAddr;

use axum::Router;
use common::{Counter, KEY, PATH, callback_body, fixture, http_send, raw_http, signed};
use suno_callback::SunoCallbacks;
use suno_callback::testing::unsigned_request;
use suno_callback::verify::{IpAllowlist, sign};

async fn serve(callbacks: &SunoCallbacks) -> SocketAddr {
    mounted::serve_axum(Router::new().route_service(PATH, callbacks.service())).await
}

fn counting(runs: &Counter, allowlist: IpAllowlist) -> SunoCallbacks {
    let runs = runs.clone();
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .verifier(allowlist)
        .body_limit(4096)
        .on_complete(move |_| {
            runs.bump();
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration")
}

#[tokio::test]
async fn signed_requests_over_loopback_get_the_table_of_answers() {
    let runs = Counter::default();
    let addr = serve(&counting(
        &runs,
        IpAllowlist::new(["127.0.0.0/8"]).expect("range"),
    ))
    .await;
    let body = fixture("music/add_instrumental_complete.json");

    http_send(addr, signed(body.clone()))
        .await
        .expect(200, "processed");
    http_send(addr, signed(body.clone()))
        .await
        .expect(200, "duplicate");
    http_send(
        addr,
        common::Signer::new("wrong").request(PATH, body.clone()),
    )
    .await
    .expect(401, "rejected");
    http_send(addr, unsigned_request(PATH, "{not json"))
        .await
        .expect(400, "invalid");
    let too_large = format!("{{\"pad\":\"{}\"}}", "x".repeat(5000));
    http_send(addr, signed(too_large))
        .await
        .expect(413, "invalid");
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn the_peer_address_reaches_the_allowlist_through_connect_info() {
    let runs = Counter::default();
    let elsewhere = IpAllowlist::new(["203.0.113.0/24"]).expect("range");
    let addr = serve(&counting(&runs, elsewhere)).await;
    let answer = http_send(addr, signed(callback_body("peer-1", "complete", 200))).await;
    answer.expect(401, "rejected");
    assert_eq!(answer.json["reason"], "source address not allowed");
    assert_eq!(runs.get(), 0);
}

#[tokio::test]
async fn header_names_on_the_wire_are_case_insensitive() {
    let runs = Counter::default();
    let addr = serve(&counting(
        &runs,
        IpAllowlist::new(["127.0.0.1"]).expect("range"),
    ))
    .await;
    let now = {
        use suno_callback::verify::{Clock, SystemClock};
        SystemClock.unix_seconds().to_string()
    };
    for (n, (ts_name, sig_name)) in [
        ("x-webhook-timestamp", "x-webhook-signature"),
        ("X-WEBHOOK-TIMESTAMP", "X-Webhook-Signature"),
    ]
    .into_iter()
    .enumerate()
    {
        let task = format!("wire-case-{n}");
        let body = callback_body(&task, "complete", 200);
        let signature = sign(KEY.as_bytes(), &task, &now);
        let request = format!(
            "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
             {ts_name}: {now}\r\n{sig_name}: {signature}\r\nContent-Length: {}\r\n\
             Connection: close\r\n\r\n{body}",
            body.len()
        );
        let (status, text) = raw_http(addr, &request).await;
        assert_eq!(status, 200, "{ts_name}/{sig_name}: {text}");
        assert!(text.contains("processed"), "{text}");
    }
    assert_eq!(runs.get(), 2);
}
