//! actix-web (feature `actix`): the example started on a loopback port, then the
//! handler in process beside a tower mounting of the same receiver, over real HTTP.

mod common;
mod mounted;

use std::net::SocketAddr;

use actix_web::{App, HttpServer, web};
use axum::Router;
use bytes::Bytes;
use common::{Counter, KEY, PATH, Signer, callback_body, http_send, raw_http, signed};
use http::{Method, Request};
use http_body_util::Full;
use suno_callback::SunoCallbacks;
use suno_callback::testing::unsigned_request;
use suno_callback::verify::IpAllowlist;

#[tokio::test]
async fn actix_example_answers_the_table() {
    mounted::answers_table("actix").await;
}

#[tokio::test]
async fn actix_example_answers_the_paths_below_the_callback_path() {
    mounted::paths_below_the_callback_path("actix", true).await;
}

#[tokio::test]
async fn actix_example_passes_the_peer_address() {
    mounted::peer_address_reaches_the_allowlist("actix").await;
}

/// Serves `callbacks` with actix-web on a loopback port (one worker).
fn serve_actix(callbacks: &SunoCallbacks) -> SocketAddr {
    let handler = callbacks.actix_handler();
    let server = HttpServer::new(move || App::new().route(PATH, web::to(handler.clone())))
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", 0))
        .expect("bind");
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    addr
}

/// Serves `callbacks` as a tower service in axum on a loopback port.
async fn serve_tower(callbacks: &SunoCallbacks) -> SocketAddr {
    mounted::serve_axum(Router::new().route_service(PATH, callbacks.service())).await
}

fn receiver(runs: &Counter, allowlist: IpAllowlist) -> SunoCallbacks {
    let runs = runs.clone();
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .verifier(allowlist)
        .body_limit(2048)
        .on_complete(move |event| {
            runs.bump();
            let fail = event.task_id() == "fails";
            async move {
                if fail {
                    Err(suno_callback::HandlerError::msg("the handler failed"))
                } else {
                    Ok(())
                }
            }
        })
        .build()
        .expect("valid configuration")
}

fn loopback() -> IpAllowlist {
    IpAllowlist::new(["127.0.0.0/8"]).expect("range")
}

#[tokio::test]
async fn one_receiver_mounted_in_tower_and_actix_shares_its_store() {
    let runs = Counter::default();
    let callbacks = receiver(&runs, loopback());
    let actix = serve_actix(&callbacks);
    let tower = serve_tower(&callbacks).await;

    let first = signed(callback_body("via-actix", "complete", 200));
    http_send(actix, first).await.expect(200, "processed");
    http_send(tower, signed(callback_body("via-actix", "complete", 200)))
        .await
        .expect(200, "duplicate");

    http_send(tower, signed(callback_body("via-tower", "complete", 200)))
        .await
        .expect(200, "processed");
    http_send(actix, signed(callback_body("via-tower", "complete", 200)))
        .await
        .expect(200, "duplicate");
    assert_eq!(runs.get(), 2);
}

/// The requests of the table of answers, in order (each mounting gets its own
/// receiver, so the sequence means the same on both).
fn table_requests() -> Vec<(&'static str, Request<Full<Bytes>>)> {
    let with_method = |method: Method| {
        let mut request = signed(callback_body("method", "complete", 200));
        *request.method_mut() = method;
        request
    };
    let mut text = signed(callback_body("text", "complete", 200));
    text.headers_mut()
        .insert("content-type", "text/plain".parse().expect("value"));
    let padded = format!(
        r#"{{"code":200,"data":{{"callbackType":"complete","task_id":"big"}},"pad":"{}"}}"#,
        "x".repeat(4096)
    );
    vec![
        ("processed", signed(callback_body("t1", "complete", 200))),
        ("duplicate", signed(callback_body("t1", "complete", 200))),
        ("ignored", signed(callback_body("t1", "text", 200))),
        ("failed", signed(callback_body("fails", "complete", 200))),
        (
            "bad signature",
            Signer::new("wrong").request(PATH, callback_body("t2", "complete", 200)),
        ),
        (
            "unsigned",
            unsigned_request(PATH, callback_body("t2", "complete", 200)),
        ),
        ("not json", signed("{not json")),
        ("GET", with_method(Method::GET)),
        ("PUT", with_method(Method::PUT)),
        ("text/plain", text),
        ("declared too large", signed(padded)),
    ]
}

#[tokio::test]
async fn actix_gives_the_same_answers_as_the_tower_service() {
    let tower = serve_tower(&receiver(&Counter::default(), loopback())).await;
    let actix = serve_actix(&receiver(&Counter::default(), loopback()));
    for ((case, to_tower), (_, to_actix)) in table_requests().into_iter().zip(table_requests()) {
        let from_tower = http_send(tower, to_tower).await;
        let from_actix = http_send(actix, to_actix).await;
        assert_eq!(from_actix.status, from_tower.status, "{case}");
        assert_eq!(from_actix.json, from_tower.json, "{case}");
        for header in ["content-type", "allow", "retry-after"] {
            assert_eq!(
                from_actix.headers.get(header),
                from_tower.headers.get(header),
                "{case}: {header}"
            );
        }
    }
    for (size, status) in [(1500, 200), (4096, 413)] {
        let (from_tower, tower_body) =
            raw_http(tower, &mounted::chunked_callback(tower, "chunked", size)).await;
        let (from_actix, actix_body) =
            raw_http(actix, &mounted::chunked_callback(actix, "chunked", size)).await;
        assert_eq!(
            (from_tower, from_actix),
            (status, status),
            "{tower_body} / {actix_body}"
        );
    }
}

#[tokio::test]
async fn actix_answers_the_status_each_situation_calls_for() {
    let runs = Counter::default();
    let actix = serve_actix(&receiver(&runs, loopback()));
    let expected = [
        (200, "processed"),
        (200, "duplicate"),
        (200, "ignored"),
        (500, "failed"),
        (401, "rejected"),
        (401, "rejected"),
        (400, "invalid"),
        (405, "invalid"),
        (405, "invalid"),
        (415, "invalid"),
        (413, "invalid"),
    ];
    for ((case, request), (status, label)) in table_requests().into_iter().zip(expected) {
        let answer = http_send(actix, request).await;
        assert_eq!(
            (answer.status.as_u16(), answer.label()),
            (status, label),
            "{case}"
        );
    }
    // The failed handler released its claim: the sender's retry runs it again.
    http_send(actix, signed(callback_body("fails", "complete", 200)))
        .await
        .expect(500, "failed");
    assert_eq!(runs.get(), 3);
}

#[tokio::test]
async fn actix_passes_its_peer_address_to_the_allowlist() {
    let runs = Counter::default();
    let elsewhere = IpAllowlist::new(["203.0.113.0/24"]).expect("range");
    let actix = serve_actix(&receiver(&runs, elsewhere));
    let answer = http_send(actix, signed(callback_body("peer", "complete", 200))).await;
    answer.expect(401, "rejected");
    assert_eq!(answer.json["reason"], "source address not allowed");

    let proxied = IpAllowlist::new(["198.51.100.7"])
        .expect("range")
        .trust_forwarded_for_from(["127.0.0.1"])
        .expect("proxy");
    let actix = serve_actix(&receiver(&runs, proxied));
    let mut request = signed(callback_body("forwarded", "complete", 200));
    request
        .headers_mut()
        .insert("x-forwarded-for", "198.51.100.7".parse().expect("value"));
    http_send(actix, request).await.expect(200, "processed");
    assert_eq!(runs.get(), 1);
}

#[tokio::test]
async fn actix_types_a_request_by_its_family_path() {
    let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let record = std::sync::Arc::clone(&seen);
    let callbacks = SunoCallbacks::builder()
        .hmac_key(KEY)
        .on_failure(move |event| {
            record.lock().expect("lock").push(event.family());
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration");
    let handler = callbacks.actix_handler();
    let server = HttpServer::new(move || {
        App::new()
            .route(PATH, web::to(handler.clone()))
            .route(&format!("{PATH}/{{family}}"), web::to(handler.clone()))
    })
    .workers(1)
    .disable_signals()
    .bind(("127.0.0.1", 0))
    .expect("bind");
    let addr = server.addrs()[0];
    tokio::spawn(server.run());
    let failure = common::fixture("midi/failure.json");
    let signer = Signer::new(KEY);
    http_send(addr, common::signed_with(&signer, PATH, failure.clone()))
        .await
        .expect(200, "processed");
    http_send(
        addr,
        common::signed_with(&signer, &format!("{PATH}/midi"), failure),
    )
    .await
    .expect(200, "processed");
    assert_eq!(
        *seen.lock().expect("lock"),
        [suno_callback::Family::Unknown, suno_callback::Family::Midi]
    );
}
