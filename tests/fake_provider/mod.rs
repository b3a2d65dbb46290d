//! A fake task-details server on a loopback port: scripted answers per task id (and
//! for the jobs route's task creation), every request recorded (method, path, task id,
//! `Authorization`, body).
#![allow(dead_code)] // each test binary uses its own subset

use std::collections::{HashMap, VecDeque};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, Method, Response, Uri};

/// The task id in the provider fixtures.
pub const FIXTURE_TASK: &str = "4e5f6a7b8c9d40e1f2a3b4c5d6e7f809";
/// The task id in the jobs-route fixtures (`jobs_*`, `market/`).
pub const MARKET_TASK: &str = "market-task-1";
/// The script key of `POST /api/v1/jobs/createTask` (which names no task).
pub const CREATE_TASK: &str = "POST /api/v1/jobs/createTask";

/// One scripted answer.
#[derive(Clone, Debug)]
pub struct Reply {
    pub status: u16,
    pub retry_after: Option<String>,
    pub body: String,
    pub delay: Duration,
}

impl Reply {
    /// `200` with this body.
    pub fn ok(body: impl Into<String>) -> Self {
        Self {
            status: 200,
            retry_after: None,
            body: body.into(),
            delay: Duration::ZERO,
        }
    }
    /// This status with an empty JSON body.
    pub fn status(status: u16) -> Self {
        Self {
            status,
            ..Self::ok("{}")
        }
    }
    /// With a `Retry-After` header.
    pub fn retry_after(mut self, value: &str) -> Self {
        self.retry_after = Some(value.to_owned());
        self
    }
    /// Answered after `delay`.
    pub fn slow(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// A provider fixture (`tests/fixtures/provider/NAME.json`) about `task_id`.
pub fn provider_fixture(name: &str, task_id: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/provider/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .replace(FIXTURE_TASK, task_id)
        .replace(MARKET_TASK, task_id)
}

/// A jobs-route callback fixture (`tests/fixtures/market/NAME.json`) about `task_id`.
pub fn market_fixture(name: &str, task_id: &str) -> String {
    let path = format!(
        "{}/tests/fixtures/market/{name}.json",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("read {path}: {e}"))
        .replace(MARKET_TASK, task_id)
}

/// A creation answer of the jobs route for `task_id`.
pub fn created(task_id: &str) -> Reply {
    Reply::ok(format!(
        r#"{{"code":200,"msg":"success","data":{{"taskId":"{task_id}"}}}}"#
    ))
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub task_id: String,
    pub authorization: Option<String>,
    pub body: String,
}

#[derive(Default)]
struct State {
    scripts: HashMap<String, VecDeque<Reply>>,
    seen: Vec<Seen>,
}

/// The running fake.
#[derive(Clone)]
pub struct FakeProvider {
    pub addr: SocketAddr,
    state: Arc<Mutex<State>>,
    scheme: &'static str,
}

/// The self-signed certificate of a fake started with [`FakeProvider::start_tls`],
/// for `127.0.0.1` and `localhost`.
#[derive(Clone, Debug)]
pub struct SelfSigned {
    pub pem: String,
    pub der: Vec<u8>,
}

impl FakeProvider {
    /// A fake speaking plain HTTP.
    pub async fn start() -> Self {
        let (state, app) = app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move { axum::serve(listener, app).await });
        Self {
            addr,
            state,
            scheme: "http",
        }
    }

    /// A fake speaking HTTPS (HTTP/1.1 over rustls) with a new self-signed
    /// certificate, and that certificate.
    pub async fn start_tls() -> (Self, SelfSigned) {
        use tokio_rustls::rustls;
        use tokio_rustls::rustls::pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer};

        let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(vec![
            "127.0.0.1".to_owned(),
            "localhost".to_owned(),
        ])
        .expect("self-signed certificate");
        let certificate = SelfSigned {
            pem: cert.pem(),
            der: cert.der().to_vec(),
        };
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(signing_key.serialize_der()));
        let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
        let mut config = rustls::ServerConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .expect("TLS versions")
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .expect("server certificate");
        config.alpn_protocols = vec![b"http/1.1".to_vec()];
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

        let (state, app) = app();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let addr = listener.local_addr().expect("addr");
        tokio::spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (acceptor, app) = (acceptor.clone(), app.clone());
                tokio::spawn(async move {
                    // A client that refuses the certificate ends the handshake here.
                    let Ok(tls) = acceptor.accept(tcp).await else {
                        return;
                    };
                    let service = hyper_util::service::TowerToHyperService::new(app);
                    let _ = hyper::server::conn::http1::Builder::new()
                        .serve_connection(hyper_util::rt::TokioIo::new(tls), service)
                        .await;
                });
            }
        });
        let fake = Self {
            addr,
            state,
            scheme: "https",
        };
        (fake, certificate)
    }

    pub fn base_url(&self) -> String {
        format!("{}://{}", self.scheme, self.addr)
    }

    /// Answers about `task_id` with these replies in turn, the last one for good.
    pub fn script(&self, task_id: &str, replies: impl IntoIterator<Item = Reply>) {
        let mut state = self.state.lock().expect("lock");
        state
            .scripts
            .insert(task_id.to_owned(), replies.into_iter().collect());
    }

    /// Every request so far.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.lock().expect("lock").seen.clone()
    }

    /// How many requests asked about `task_id`.
    pub fn count(&self, task_id: &str) -> usize {
        self.seen().iter().filter(|s| s.task_id == task_id).count()
    }
}

/// The fake's state and the router answering from it.
fn app() -> (Arc<Mutex<State>>, Router) {
    let state = Arc::new(Mutex::new(State::default()));
    let shared = Arc::clone(&state);
    let app = Router::new().fallback(
        move |method: Method, uri: Uri, headers: HeaderMap, body: Bytes| {
            let state = Arc::clone(&shared);
            async move { answer(&state, &method, &uri, &headers, &body).await }
        },
    );
    (state, app)
}

async fn answer(
    state: &Mutex<State>,
    method: &Method,
    uri: &Uri,
    headers: &HeaderMap,
    body: &Bytes,
) -> Response<Body> {
    let task_id = if method == Method::POST && uri.path() == "/api/v1/jobs/createTask" {
        CREATE_TASK.to_owned()
    } else {
        uri.query()
            .unwrap_or("")
            .split('&')
            .find_map(|pair| pair.strip_prefix("taskId="))
            .unwrap_or("")
            .to_owned()
    };
    let reply = {
        let mut state = state.lock().expect("lock");
        state.seen.push(Seen {
            method: method.to_string(),
            body: String::from_utf8_lossy(body).into_owned(),
            path: uri.path().to_owned(),
            task_id: task_id.clone(),
            authorization: headers
                .get("authorization")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
        });
        match state.scripts.get_mut(&task_id) {
            Some(queue) if queue.len() > 1 => queue.pop_front(),
            Some(queue) => queue.front().cloned(),
            None => None,
        }
    };
    let reply =
        reply.unwrap_or_else(|| Reply::ok(r#"{"code":422,"msg":"task not found","data":null}"#));
    tokio::time::sleep(reply.delay).await;
    let mut response = Response::builder()
        .status(reply.status)
        .header("content-type", "application/json");
    if let Some(retry_after) = &reply.retry_after {
        response = response.header("retry-after", retry_after);
    }
    response.body(Body::from(reply.body)).expect("response")
}
