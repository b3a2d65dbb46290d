//! What the mounting tests share: the checks every mounting's example goes through over
//! real HTTP (the table of answers, the app's other routes, the peer address reaching
//! the allowlist), a chunked request, and an axum server on a loopback port.
#![allow(dead_code)] // each test binary uses its own subset

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Full;
use suno_callback::DEFAULT_BODY_LIMIT;
use suno_callback::testing::unsigned_request;
use suno_callback::verify::{Clock, SystemClock, sign};

use crate::common::{PATH, RunningExample, Signer, callback_body, fixture, http_send};

const KEY: &str = "mounting-example-key";

/// Starts `example` with a key and checks, in order: valid (processed, one printed
/// line), duplicate, bad signature, too large, wrong method, wrong content type, the
/// app's `GET /health` and an unknown path; the refusals print nothing.
pub async fn answers_table(example: &str) {
    let mut running = RunningExample::start(example, &[("SUNO_WEBHOOK_HMAC_KEY", KEY)], &[]).await;
    let addr = running.addr;
    let signer = Signer::new(KEY);
    let complete = fixture("music/add_instrumental_complete.json");

    http_send(addr, signer.request(PATH, complete.clone()))
        .await
        .expect(200, "processed");
    let line = running.next_line().await;
    assert!(
        line.starts_with("music complete task="),
        "{example}: {line}"
    );

    http_send(addr, signer.request(PATH, complete.clone()))
        .await
        .expect(200, "duplicate");
    let answer = http_send(
        addr,
        Signer::new("not-the-key").request(PATH, callback_body("forged", "complete", 200)),
    )
    .await;
    answer.expect(401, "rejected");
    let too_large = format!(
        r#"{{"code":200,"data":{{"callbackType":"complete","task_id":"big","pad":"{}"}}}}"#,
        "x".repeat(DEFAULT_BODY_LIMIT)
    );
    http_send(addr, signer.request(PATH, too_large))
        .await
        .expect(413, "invalid");
    let mut get = signer.request(PATH, callback_body("get", "complete", 200));
    *get.method_mut() = Method::GET;
    let answer = http_send(addr, get).await;
    answer.expect(405, "invalid");
    assert_eq!(answer.headers["allow"], "POST", "{example}");
    let mut text = signer.request(PATH, callback_body("text", "complete", 200));
    text.headers_mut()
        .insert("content-type", "text/plain".parse().expect("value"));
    http_send(addr, text).await.expect(415, "invalid");
    http_send(addr, unsigned_request(PATH, "{not json"))
        .await
        .expect(400, "invalid");

    let health = http_send(addr, get_request("/health")).await;
    assert_eq!(
        (health.status, health.json.as_str()),
        (StatusCode::OK, Some("ok")),
        "{example}"
    );
    let nowhere = http_send(addr, get_request("/nowhere")).await;
    assert_eq!(nowhere.status, StatusCode::NOT_FOUND, "{example}");

    // The duplicate and the refusals printed nothing: the next line is the next event.
    http_send(
        addr,
        signer.request(PATH, callback_body("last", "remix", 200)),
    )
    .await
    .expect(200, "processed");
    assert_eq!(
        running.next_line().await,
        "music remix task=last tracks=0 titles=[] audio=-",
        "{example}"
    );
}

/// Starts `example` and checks the paths below the callback path, which every mounting
/// answers alike: a family's path types a shapeless failure as that family; any other
/// one segment (a typo, a family this version does not know) is the shared path, typed
/// by the body's shape; one trailing slash is ignored where the mounting says so;
/// deeper paths are not the receiver's.
pub async fn paths_below_the_callback_path(example: &str, trailing_slash: bool) {
    let mut running = RunningExample::start(example, &[("SUNO_WEBHOOK_HMAC_KEY", KEY)], &[]).await;
    let addr = running.addr;
    let signer = Signer::new(KEY);

    http_send(
        addr,
        signer.request(&format!("{PATH}/midi"), fixture("midi/failure.json")),
    )
    .await
    .expect(200, "processed");
    let line = running.next_line().await;
    assert!(
        line.starts_with("midi failure task=5c79a0b1c2d3e4f5a6b7c8d9e0f1be8e code=500"),
        "{example}: {line}"
    );

    for (path, task) in [
        (format!("{PATH}/bogus"), "below-bogus"),
        (format!("{PATH}/persona"), "below-persona"),
    ] {
        http_send(
            addr,
            signer.request(&path, callback_body(task, "complete", 200)),
        )
        .await
        .expect(200, "processed");
        assert_eq!(
            running.next_line().await,
            format!("music complete task={task} tracks=0 titles=[] audio=-"),
            "{example} {path}"
        );
    }
    // A shapeless failure on an unknown segment is a failure of no known family, as on
    // the shared path: never typed from the segment.
    http_send(
        addr,
        signer.request(&format!("{PATH}/bogus"), fixture("lyrics/failure_400.json")),
    )
    .await
    .expect(200, "processed");
    let line = running.next_line().await;
    assert!(
        line.starts_with("unknown failure task=3b66882fde0a5d398bd269cab6d9542b code=400"),
        "{example}: {line}"
    );

    if trailing_slash {
        for (path, task) in [
            (format!("{PATH}/"), "slash-base"),
            (format!("{PATH}/wav/"), "slash-wav"),
        ] {
            http_send(
                addr,
                signer.request(&path, callback_body(task, "complete", 200)),
            )
            .await
            .expect(200, "processed");
            let line = running.next_line().await;
            assert!(
                line.contains(&format!("task={task}")),
                "{example} {path}: {line}"
            );
        }
    }

    let deeper = http_send(
        addr,
        signer.request(
            &format!("{PATH}/wav/x"),
            callback_body("deeper", "complete", 200),
        ),
    )
    .await;
    assert_eq!(deeper.status, StatusCode::NOT_FOUND, "{example}");
}

/// Starts `example` twice with `SUNO_ALLOWED_IPS`: a range holding the loopback
/// address lets a callback through, one that does not refuses it; so the mounting
/// passed the connection's peer address to the allowlist.
pub async fn peer_address_reaches_the_allowlist(example: &str) {
    let signer = Signer::new(KEY);
    for (allowed, status, label) in [
        ("127.0.0.0/8", 200, "processed"),
        ("203.0.113.0/24, 198.51.100.7", 401, "rejected"),
    ] {
        let running = RunningExample::start(
            example,
            &[
                ("SUNO_WEBHOOK_HMAC_KEY", KEY),
                ("SUNO_ALLOWED_IPS", allowed),
            ],
            &[],
        )
        .await;
        let answer = http_send(
            running.addr,
            signer.request(PATH, callback_body("peer", "complete", 200)),
        )
        .await;
        answer.expect(status, label);
        if status == 401 {
            assert_eq!(
                answer.json["reason"], "source address not allowed",
                "{example}"
            );
        }
    }
}

pub fn get_request(path: &str) -> Request<Full<Bytes>> {
    let mut request = Request::new(Full::default());
    *request.uri_mut() = path.parse().expect("path");
    request
}

/// A callback for `task` signed with the tests' `KEY`, padded to `size` bytes and sent
/// chunked, without `Content-Length`, in two chunks: the text of the whole request.
pub fn chunked_callback(addr: SocketAddr, task: &str, size: usize) -> String {
    let head =
        format!(r#"{{"code":200,"data":{{"callbackType":"complete","task_id":"{task}"}},"pad":""#);
    let body = format!(
        "{head}{}\"}}",
        "x".repeat(size.saturating_sub(head.len() + 2))
    );
    let now = SystemClock.unix_seconds().to_string();
    let signature = sign(crate::common::KEY.as_bytes(), task, &now);
    let half = body.len() / 2;
    let chunks: String = [&body[..half], &body[half..]]
        .iter()
        .map(|chunk| format!("{:x}\r\n{chunk}\r\n", chunk.len()))
        .collect();
    format!(
        "POST {PATH} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\
         X-Webhook-Timestamp: {now}\r\nX-Webhook-Signature: {signature}\r\n\
         Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n{chunks}0\r\n\r\n"
    )
}

/// Serves an axum app on a loopback port, with `ConnectInfo` for the peer address.
pub async fn serve_axum(app: axum::Router) -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        axum::serve(
            listener,
            app.into_make_service_with_connect_info::<SocketAddr>(),
        )
        .await
        .expect("serve");
    });
    addr
}
