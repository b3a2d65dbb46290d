//! A success is not forgotten because the store refused one write: the handler ran,
//! Redis refused the `complete`, and the claim is kept and completed once Redis is
//! back, so a replay after the lease finds the callback done, on every replica.
//!
//! Redis is `REDIS_URL` (default `redis://127.0.0.1:6379`), reached through a loopback
//! TCP proxy of this test's own, which the test cuts: the shared server itself is never
//! paused nor reconfigured. Without a server the test says so and passes, unless
//! `SUNO_CALLBACK_REQUIRE_REDIS=1` (as CI sets it).

mod common;

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::redis::{authority, redis_required, redis_url};
use common::{Counter, KEY, PATH, send, signer};
use suno_callback::store::{ClaimToken, DedupKey, RedisStore};
use suno_callback::testing::MusicCallback;
use suno_callback::{Family, Outcome, SunoCallbacks};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// A loopback TCP proxy to Redis that can be cut (every connection closed, new ones
/// refused) and restored.
struct Proxy {
    addr: SocketAddr,
    cut: Arc<AtomicBool>,
    connections: Arc<Mutex<Vec<JoinHandle<()>>>>,
}

impl Proxy {
    async fn start(upstream: String) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let cut = Arc::new(AtomicBool::new(false));
        let connections: Arc<Mutex<Vec<JoinHandle<()>>>> = Arc::default();
        let (is_cut, held) = (Arc::clone(&cut), Arc::clone(&connections));
        tokio::spawn(async move {
            while let Ok((mut client, _)) = listener.accept().await {
                if is_cut.load(Ordering::SeqCst) {
                    continue; // dropped: refused
                }
                let upstream = upstream.clone();
                let connection = tokio::spawn(async move {
                    if let Ok(mut server) = TcpStream::connect(&upstream).await {
                        let _ = tokio::io::copy_bidirectional(&mut client, &mut server).await;
                    }
                });
                held.lock().unwrap().push(connection);
            }
        });
        Self {
            addr,
            cut,
            connections,
        }
    }

    fn url(&self) -> String {
        format!("redis://{}", self.addr)
    }

    fn cut(&self) {
        self.cut.store(true, Ordering::SeqCst);
        for connection in self.connections.lock().unwrap().drain(..) {
            connection.abort();
        }
    }

    fn restore(&self) {
        self.cut.store(false, Ordering::SeqCst);
    }
}

fn receiver(
    store: RedisStore,
    runs: &Counter,
    on_run: impl Fn() + Send + Sync + 'static,
) -> SunoCallbacks {
    let runs = runs.clone();
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .store(store)
        .handler_timeout(Duration::from_secs(1))
        .store_timeout(Duration::from_millis(500))
        .claim_lease(Duration::from_secs(2))
        .on_complete(move |_| {
            runs.bump();
            on_run();
            async { Ok(()) }
        })
        .build()
        .expect("receiver")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_refused_completion_is_retried_until_a_replay_finds_it_done() {
    let url = redis_url();
    let direct_client = redis::Client::open(url.as_str()).expect("REDIS_URL");
    let direct = tokio::time::timeout(
        Duration::from_secs(2),
        direct_client.get_multiplexed_async_connection(),
    )
    .await;
    let Ok(Ok(mut direct)) = direct else {
        assert!(
            !redis_required(),
            "SUNO_CALLBACK_REQUIRE_REDIS=1 but no Redis server answers at {url}"
        );
        println!("skipped: no Redis server answers at {url}");
        return;
    };
    let proxy = Arc::new(Proxy::start(authority(&url).unwrap_or(&url).to_owned()).await);
    let prefix = format!("suno-callback-test:settle:{}", ClaimToken::new_unique());
    let store = RedisStore::builder(proxy.url())
        .key_prefix(&prefix)
        .call_timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect through the proxy");
    let runs = Counter::default();
    let cutter = Arc::clone(&proxy);
    // The handler succeeds, and Redis goes away under it: the `complete` is refused.
    let callbacks = receiver(store.clone(), &runs, move || cutter.cut());
    let task = "settle-refused";
    let request = MusicCallback::complete(task).signed_request(&signer(), PATH);
    let (parts, body) = request.into_parts();
    let replay = || http::Request::from_parts(parts.clone(), body.clone());
    send(callbacks.service(), replay())
        .await
        .expect(200, "processed");
    assert_eq!(runs.get(), 1);

    // Longer than the lease: in Redis the claim is gone, in this process it is kept.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    proxy.restore();
    let key = store.redis_key(&DedupKey::new(
        task,
        Family::Music,
        "complete",
        Outcome::Success,
    ));
    let mut landed = false;
    for _ in 0..100 {
        let value: Option<String> = redis::cmd("GET")
            .arg(&key)
            .query_async(&mut direct)
            .await
            .expect("GET");
        if value.as_deref() == Some("done") {
            landed = true;
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert!(landed, "the completion never reached Redis");

    send(callbacks.service(), replay())
        .await
        .expect(200, "duplicate");
    // Another replica, straight to Redis, finds it done too.
    let other = RedisStore::builder(url)
        .key_prefix(&prefix)
        .connect()
        .await
        .expect("connect");
    let replica = receiver(other, &runs, || {});
    send(replica.service(), replay())
        .await
        .expect(200, "duplicate");
    assert_eq!(runs.get(), 1, "the handler ran again");
    let _: () = redis::cmd("DEL")
        .arg(&key)
        .query_async(&mut direct)
        .await
        .expect("DEL");
}
