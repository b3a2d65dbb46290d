//! `RedisStore` against a real Redis server: the store conformance suite, several
//! replicas sharing one server, a replica that dies holding a claim, a server that
//! goes away and comes back, and the round trips a callback costs.
//!
//! The server is `REDIS_URL` (default `redis://127.0.0.1:6379`); every test writes
//! under its own key prefix. Without a server the tests are reported as ignored, with
//! a line saying why, unless `SUNO_CALLBACK_REQUIRE_REDIS=1` (as CI sets it), which
//! makes a missing server a failure. The outage and round-trip tests start their own
//! `redis-server` on a free loopback port.

mod common;

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::redis::{REQUIRE_REDIS as REQUIRE, answers_ping, redis_url, unique_prefix};
use common::{Counter, KEY, send, signed, trial, two_quickstarts_are_one_receiver};
use libtest_mimic::Arguments;
use suno_callback::store::{Claim, DedupKey, DedupStore, RedisStore};
use suno_callback::testing::{MusicCallback, conformance};
use suno_callback::{CallbackEvent, Family, HandlerError, Outcome, SunoCallbacks};
use tokio::sync::Notify;

async fn store(prefix: &str) -> RedisStore {
    RedisStore::builder(redis_url())
        .key_prefix(prefix)
        .connect()
        .await
        .expect("connect to REDIS_URL")
}

fn redis_server_installed() -> bool {
    Command::new("redis-server")
        .arg("--version")
        .stdout(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

macro_rules! conformance_trials {
    ($mode:literal, $by_script:expr; $($check:ident),*) => {
        vec![$(
            trial(concat!("conformance::", $mode, "::", stringify!($check)), || async {
                let store = RedisStore::builder(redis_url())
                    .key_prefix(unique_prefix(stringify!($check)))
                    .claim_by_script($by_script)
                    .connect()
                    .await
                    .expect("connect to REDIS_URL");
                conformance::$check(&store).await;
            }),
        )*
        trial(concat!("conformance::", $mode, "::concurrent_claims_have_one_winner"), || async {
            let store = RedisStore::builder(redis_url())
                .key_prefix(unique_prefix("race"))
                .claim_by_script($by_script)
                .connect()
                .await
                .expect("connect to REDIS_URL");
            conformance::concurrent_claims_have_one_winner(Arc::new(store)).await;
        }),
        trial(concat!("conformance::", $mode, "::concurrent_bindings_have_one_winner"), || async {
            let store = RedisStore::builder(redis_url())
                .key_prefix(unique_prefix("bind-race"))
                .claim_by_script($by_script)
                .connect()
                .await
                .expect("connect to REDIS_URL");
            conformance::concurrent_bindings_have_one_winner(Arc::new(store)).await;
        }),
        trial(concat!("conformance::", $mode, "::concurrent_bind_and_claims_have_one_winner"), || async {
            let store = RedisStore::builder(redis_url())
                .key_prefix(unique_prefix("bind-claim-race"))
                .claim_by_script($by_script)
                .connect()
                .await
                .expect("connect to REDIS_URL");
            conformance::concurrent_bind_and_claims_have_one_winner(Arc::new(store)).await;
        })]
    };
}

fn main() -> ExitCode {
    let arguments = Arguments::from_args();
    let url = redis_url();
    let required = std::env::var(REQUIRE).is_ok_and(|value| value == "1");
    let server = answers_ping(&url);
    let binary = redis_server_installed();
    if required && !(server && binary) {
        eprintln!(
            "{REQUIRE}=1 but {}: the Redis tests cannot run",
            if server {
                "`redis-server` is not installed".to_owned()
            } else {
                format!("no Redis server answers at {url}")
            }
        );
        return ExitCode::FAILURE;
    }
    if !server {
        println!(
            "Redis tests skipped: no Redis server answers at {url} (start one or set \
             REDIS_URL; {REQUIRE}=1 makes this a failure)"
        );
    } else if !binary {
        println!("Redis outage tests skipped: `redis-server` is not installed");
    }

    let mut shared_server = Vec::new();
    shared_server.extend(conformance_trials!("set_nx_get", false;
        claim_is_exclusive, complete_marks_done, release_frees_the_key,
        lease_expiry_frees_the_key, expired_token_cannot_complete, ttl_expiry_forgets_done,
        token_mismatch_is_refused, settled_token_is_spent, keys_are_independent,
        signature_binds_to_its_first_use, signature_binding_expires,
        bind_and_claim_keeps_both_guarantees));
    shared_server.extend(conformance_trials!("lua_claim", true;
        claim_is_exclusive, complete_marks_done, release_frees_the_key,
        lease_expiry_frees_the_key, expired_token_cannot_complete, ttl_expiry_forgets_done,
        token_mismatch_is_refused, settled_token_is_spent, keys_are_independent,
        signature_binds_to_its_first_use, signature_binding_expires,
        bind_and_claim_keeps_both_guarantees));
    shared_server.extend([
        trial(
            "replicas::each_callback_runs_once_across_replicas",
            replicas_run_each_once,
        ),
        trial(
            "replicas::a_duplicate_waits_for_the_other_replica",
            duplicate_waits_across_replicas,
        ),
        trial(
            "replicas::a_dead_replicas_claim_expires_with_its_lease",
            dead_replica,
        ),
        trial(
            "replicas::a_failed_run_is_taken_over_by_the_waiting_replica",
            failed_run_taken_over,
        ),
        trial(
            "replicas::a_signature_used_on_one_replica_is_bound_on_the_other",
            binding_across_replicas,
        ),
        trial(
            "quickstart::two_copies_on_one_redis_are_one_receiver",
            two_quickstarts,
        ),
    ]);
    let own_server = vec![
        trial(
            "outage::redis_down_is_503_then_recovers",
            outage_and_recovery,
        ),
        trial(
            "round_trips::two_per_callback_one_per_duplicate",
            round_trips,
        ),
        trial(
            "round_trips::scripts_lost_by_the_server_are_loaded_again",
            scripts_are_loaded_again,
        ),
        trial(
            "outage::a_hung_redis_is_503_within_the_call_timeout",
            || hung_redis(false),
        ),
        trial(
            "outage::a_hung_redis_is_503_within_the_call_timeout_with_lua_claims",
            || hung_redis(true),
        ),
        trial(
            "outage::a_store_built_while_redis_is_down_serves_once_it_is_up",
            built_while_down,
        ),
        trial(
            "outage::a_connection_that_stops_answering_is_replaced",
            silent_connection_replaced,
        ),
        trial(
            "connect::a_wrong_password_is_reported_at_once",
            wrong_password,
        ),
    ];
    // These need no server at all.
    let anywhere = vec![trial(
        "connect::a_missing_server_is_reported_at_once",
        missing_server,
    )];
    let trials = shared_server
        .into_iter()
        .map(|trial| trial.with_ignored_flag(!server))
        .chain(
            own_server
                .into_iter()
                .map(|trial| trial.with_ignored_flag(!binary)),
        )
        .chain(anywhere)
        .collect();
    libtest_mimic::run(&arguments, trials).exit_code()
}

/// A receiver whose text, first and complete handlers count runs per callback.
fn counting_replica(store: RedisStore, seen: &Arc<Mutex<HashMap<String, usize>>>) -> SunoCallbacks {
    let record = |seen: &Arc<Mutex<HashMap<String, usize>>>| {
        let seen = Arc::clone(seen);
        move |event: CallbackEvent| {
            let key = format!("{}/{}", event.task_id(), event.stage());
            *seen.lock().expect("lock").entry(key).or_default() += 1;
            async {
                tokio::time::sleep(Duration::from_millis(5)).await;
                Ok(())
            }
        }
    };
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .store(store)
        .on_text(record(seen))
        .on_first(record(seen))
        .on_complete(record(seen))
        .build()
        .expect("valid configuration")
}

async fn replicas_run_each_once() {
    const TASKS: usize = 40;
    const COPIES: usize = 6;
    let prefix = unique_prefix("replicas");
    let seen: Arc<Mutex<HashMap<String, usize>>> = Arc::default();
    // Three replicas, each with its own connection, as separate processes would have.
    let replicas = [
        counting_replica(store(&prefix).await, &seen),
        counting_replica(store(&prefix).await, &seen),
        counting_replica(store(&prefix).await, &seen),
    ];
    let mut deliveries = Vec::new();
    for task in 0..TASKS {
        let task_id = format!("replica-task-{task}");
        for stage in ["text", "first", "complete"] {
            let body = MusicCallback::new(task_id.clone(), stage).body();
            for copy in 0..COPIES {
                let replica = &replicas[(task + copy) % replicas.len()];
                deliveries.push(tokio::spawn(send(replica.service(), signed(body.clone()))));
            }
        }
    }
    let mut labels: HashMap<String, usize> = HashMap::new();
    for delivery in deliveries {
        let answer = delivery.await.expect("delivery");
        assert_eq!(answer.status.as_u16(), 200, "{:?}", answer.json);
        *labels.entry(answer.label().to_owned()).or_default() += 1;
    }
    let seen = seen.lock().expect("lock");
    assert_eq!(seen.len(), TASKS * 3, "every callback ran");
    assert!(
        seen.values().all(|&runs| runs == 1),
        "each exactly once: {seen:?}"
    );
    assert_eq!(labels.get("processed"), Some(&(TASKS * 3)), "{labels:?}");
    assert_eq!(
        labels.get("duplicate"),
        Some(&(TASKS * 3 * (COPIES - 1))),
        "{labels:?}"
    );
}

async fn duplicate_waits_across_replicas() {
    let prefix = unique_prefix("waiting");
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let runs = Counter::default();
    let slow = {
        let (entered, release, runs) = (Arc::clone(&entered), Arc::clone(&release), runs.clone());
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .store(store(&prefix).await)
            .on_complete(move |_| {
                let (entered, release) = (Arc::clone(&entered), Arc::clone(&release));
                runs.bump();
                async move {
                    entered.notify_one();
                    release.notified().await;
                    Ok(())
                }
            })
            .build()
            .expect("valid configuration")
    };
    let other = {
        let runs = runs.clone();
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .store(store(&prefix).await)
            .in_flight_wait(Duration::from_secs(5))
            .on_complete(move |_| {
                runs.bump();
                async { Ok(()) }
            })
            .build()
            .expect("valid configuration")
    };
    let body = MusicCallback::complete("waiting-task").body();
    let first = tokio::spawn(send(slow.service(), signed(body.clone())));
    tokio::time::timeout(Duration::from_secs(10), entered.notified())
        .await
        .expect("the first replica's handler started");
    let second = tokio::spawn(send(other.service(), signed(body)));
    tokio::time::sleep(Duration::from_millis(100)).await;
    release.notify_one();
    first.await.expect("first").expect(200, "processed");
    second.await.expect("second").expect(200, "duplicate");
    assert_eq!(runs.get(), 1);
}

async fn dead_replica() {
    let prefix = unique_prefix("dead");
    let key = DedupKey::new(
        "dead-replica-task",
        Family::Music,
        "complete",
        Outcome::Success,
    );
    // A replica claims the callback, then dies before completing or releasing it.
    let dying = store(&prefix).await;
    let claimed = dying.claim(&key, Duration::from_millis(1200)).await;
    assert!(matches!(claimed, Ok(Claim::Acquired(_))), "{claimed:?}");
    drop(dying);

    let runs = Counter::default();
    let survivor = {
        let runs = runs.clone();
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .store(store(&prefix).await)
            .in_flight_wait(Duration::from_millis(200))
            .on_complete(move |_| {
                runs.bump();
                async { Ok(()) }
            })
            .build()
            .expect("valid configuration")
    };
    let body = MusicCallback::complete("dead-replica-task").body();
    let early = send(survivor.service(), signed(body.clone())).await;
    early.expect(409, "in_flight");
    assert_eq!(early.headers["retry-after"], "5");
    assert_eq!(runs.get(), 0);
    tokio::time::sleep(Duration::from_millis(1300)).await;
    send(survivor.service(), signed(body))
        .await
        .expect(200, "processed");
    assert_eq!(runs.get(), 1);
}

/// A loopback port nothing listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|listener| listener.local_addr())
        .expect("a free port")
        .port()
}

/// A `redis-server` of the test's own, on a free loopback port.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
    extra_args: Vec<String>,
}

impl PrivateRedis {
    fn start() -> Self {
        Self::start_with(&[])
    }

    /// A server started with more `redis-server` arguments.
    fn start_with(extra_args: &[&str]) -> Self {
        let mut server = Self {
            port: free_port(),
            child: None,
            extra_args: extra_args.iter().map(|arg| (*arg).to_owned()).collect(),
        };
        server.restart();
        server
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let port = self.port.to_string();
        let child = Command::new("redis-server")
            .args([
                "--port",
                &port,
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .args(&self.extra_args)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start redis-server");
        self.child = Some(child);
        let started = Instant::now();
        while !answers_ping(&self.url()) {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Pauses the server process, so connections stay open but nothing answers.
    fn freeze(&self, frozen: bool) {
        let Some(child) = &self.child else { return };
        let signal = if frozen { "-STOP" } else { "-CONT" };
        let status = Command::new("kill")
            .args([signal, &child.id().to_string()])
            .status()
            .expect("kill");
        assert!(status.success());
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.freeze(false);
        self.stop();
    }
}

fn counting_receiver(store: RedisStore, runs: &Counter) -> SunoCallbacks {
    let runs = runs.clone();
    SunoCallbacks::builder()
        .hmac_key(KEY)
        .store(store)
        .on_complete(move |_| {
            runs.bump();
            async { Ok(()) }
        })
        .build()
        .expect("valid configuration")
}

async fn outage_and_recovery() {
    let mut server = PrivateRedis::start();
    let store = RedisStore::builder(server.url())
        .call_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect");
    let runs = Counter::default();
    let callbacks = counting_receiver(store, &runs);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("before").body()),
    )
    .await
    .expect(200, "processed");

    server.stop();
    let during = MusicCallback::complete("during-outage").body();
    let refused = send(callbacks.service(), signed(during.clone())).await;
    refused.expect(503, "unavailable");
    assert_eq!(refused.headers["retry-after"], "30");
    assert_eq!(runs.get(), 1, "no handler runs without a claim");

    server.restart();
    // The sender retries; the store reconnects by itself, without being rebuilt.
    let started = Instant::now();
    loop {
        let answer = send(callbacks.service(), signed(during.clone())).await;
        if answer.label() == "processed" {
            break;
        }
        answer.expect(503, "unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no recovery in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // (The test's server keeps nothing on disk, so what it knew before the restart
    // is gone: that is the server's persistence setting, not the store's concern.)
    assert_eq!(runs.get(), 2);
}

async fn hung_redis(claim_by_script: bool) {
    let server = PrivateRedis::start();
    let store = RedisStore::builder(server.url())
        .claim_by_script(claim_by_script)
        .call_timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect");
    let runs = Counter::default();
    let callbacks = counting_receiver(store, &runs);
    // Connected, and the scripts loaded, before the server hangs.
    send(
        callbacks.service(),
        signed(MusicCallback::complete("before-hang").body()),
    )
    .await
    .expect(200, "processed");
    server.freeze(true);
    let started = Instant::now();
    let answer = send(
        callbacks.service(),
        signed(MusicCallback::complete("hung").body()),
    )
    .await;
    let took = started.elapsed();
    server.freeze(false);
    answer.expect(503, "unavailable");
    assert!(took < Duration::from_secs(2), "answered in {took:?}");
    assert_eq!(runs.get(), 1, "no handler ran for the refused callback");

    // The sender retries. The claim whose reply timed out still reached the server
    // and ran once it was thawed; it must not hold the retry off for its whole lease
    // (30 s), answering 409 to every retry meanwhile.
    let thawed = Instant::now();
    loop {
        let answer = send(
            callbacks.service(),
            signed(MusicCallback::complete("hung").body()),
        )
        .await;
        if answer.label() == "processed" {
            break;
        }
        assert!(
            thawed.elapsed() < Duration::from_secs(10),
            "the retry is still refused {:?} after the thaw: {}",
            thawed.elapsed(),
            answer.label()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(runs.get(), 2);
}

/// A TCP proxy in front of a server that can silence the connections it carries:
/// they stay open, but nothing passes either way any more, as on a half-open
/// connection or a network path that drops packets. New connections pass.
struct SilencingProxy {
    port: u16,
    connections: Arc<Mutex<Vec<Arc<std::sync::atomic::AtomicBool>>>>,
}

impl SilencingProxy {
    async fn start(upstream_port: u16) -> Self {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind");
        let port = listener.local_addr().expect("addr").port();
        let connections: Arc<Mutex<Vec<Arc<std::sync::atomic::AtomicBool>>>> = Arc::default();
        let registry = Arc::clone(&connections);
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let Ok(server) = tokio::net::TcpStream::connect(("127.0.0.1", upstream_port)).await
                else {
                    continue;
                };
                let silenced = Arc::new(std::sync::atomic::AtomicBool::new(false));
                registry.lock().expect("lock").push(Arc::clone(&silenced));
                let (client_read, client_write) = client.into_split();
                let (server_read, server_write) = server.into_split();
                tokio::spawn(pass(client_read, server_write, Arc::clone(&silenced)));
                tokio::spawn(pass(server_read, client_write, silenced));
            }
        });
        Self { port, connections }
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Silences every connection open now.
    fn silence_open_connections(&self) {
        for silenced in self.connections.lock().expect("lock").iter() {
            silenced.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    fn connections_opened(&self) -> usize {
        self.connections.lock().expect("lock").len()
    }
}

/// Copies bytes one way until the connection closes; drops them once silenced.
async fn pass(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    silenced: Arc<std::sync::atomic::AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buffer = vec![0u8; 16 * 1024];
    loop {
        let read = match from.read(&mut buffer).await {
            Ok(0) | Err(_) => return,
            Ok(read) => read,
        };
        if silenced.load(std::sync::atomic::Ordering::SeqCst) {
            continue;
        }
        if to.write_all(&buffer[..read]).await.is_err() {
            return;
        }
    }
}

async fn silent_connection_replaced() {
    let server = PrivateRedis::start();
    let proxy = SilencingProxy::start(server.port).await;
    let store = RedisStore::builder(proxy.url())
        .key_prefix(unique_prefix("silent"))
        .call_timeout(Duration::from_millis(300))
        .connect()
        .await
        .expect("connect");
    let key = |name: &str| DedupKey::new(name, Family::Music, "complete", Outcome::Success);
    let lease = Duration::from_secs(30);
    assert!(matches!(
        store.claim(&key("before"), lease).await,
        Ok(Claim::Acquired(_))
    ));
    let opened = proxy.connections_opened();

    // The store's connection stays open but nothing comes back on it any more.
    proxy.silence_open_connections();
    let refused = store.claim(&key("silenced"), lease).await;
    assert!(
        refused.as_ref().is_err_and(|e| e.is_unavailable()),
        "{refused:?}"
    );

    // The timed-out call had the connection replaced: later calls succeed on a new
    // one, while the old one would never answer again.
    let started = Instant::now();
    loop {
        match store.claim(&key("after"), lease).await {
            Ok(Claim::Acquired(_)) => break,
            other => assert!(
                started.elapsed() < Duration::from_secs(10),
                "still failing {:?} after the silence: {other:?}",
                started.elapsed()
            ),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(
        proxy.connections_opened() > opened,
        "the store connected anew"
    );
}

/// The commands clients send to a server, as `MONITOR` reports them: one line per
/// command a client sent, and lines marked `lua` for commands a script ran inside
/// the same round trip.
struct Monitor {
    lines: Arc<Mutex<Vec<String>>>,
}

impl Monitor {
    fn attach(server: &PrivateRedis) -> Self {
        let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
        stream.write_all(b"MONITOR\r\n").expect("MONITOR");
        let mut reader = BufReader::new(stream);
        let mut ok = String::new();
        reader.read_line(&mut ok).expect("MONITOR reply");
        assert!(ok.starts_with("+OK"), "{ok}");
        let lines: Arc<Mutex<Vec<String>>> = Arc::default();
        let sink = Arc::clone(&lines);
        std::thread::spawn(move || {
            for line in reader.lines() {
                let Ok(line) = line else { break };
                sink.lock().expect("lock").push(line);
            }
        });
        Self { lines }
    }

    /// The commands clients sent since the last call on keys under `prefix` (script
    /// internals left out): other clients of the server do not count.
    async fn client_commands(&self, prefix: &str) -> Vec<String> {
        // MONITOR lines arrive asynchronously; give the last ones time to land.
        tokio::time::sleep(Duration::from_millis(200)).await;
        let lines = std::mem::take(&mut *self.lines.lock().expect("lock"));
        let quoted = format!("\"{prefix}:");
        lines
            .into_iter()
            .filter(|line| !line.contains(" lua] ") && line.contains(&quoted))
            .filter_map(|line| Some(line.split_once("] \"")?.1.split('"').next()?.to_uppercase()))
            .collect()
    }
}

async fn round_trips() {
    let server = PrivateRedis::start();
    let prefix = unique_prefix("round-trips");
    let store = RedisStore::builder(server.url())
        .key_prefix(&prefix)
        .connect()
        .await
        .expect("connect");
    let runs = Counter::default();
    let callbacks = counting_receiver(store, &runs);
    // The first callback also loads the scripts into the server.
    send(
        callbacks.service(),
        signed(MusicCallback::complete("warm-up").body()),
    )
    .await
    .expect(200, "processed");

    let monitor = Monitor::attach(&server);
    // Another client's commands on the same server are not counted.
    let other = RedisStore::builder(server.url())
        .key_prefix(unique_prefix("round-trips-other"))
        .connect()
        .await
        .expect("connect");
    let other_key = DedupKey::new("other", Family::Music, "complete", Outcome::Success);
    other
        .claim(&other_key, Duration::from_secs(30))
        .await
        .expect("claim");
    send(
        callbacks.service(),
        signed(MusicCallback::complete("measured").body()),
    )
    .await
    .expect(200, "processed");
    let first = monitor.client_commands(&prefix).await;
    assert_eq!(
        first,
        ["EVALSHA", "EVALSHA"],
        "a first delivery: bind its signature and claim (one script), complete"
    );

    send(
        callbacks.service(),
        signed(MusicCallback::complete("measured").body()),
    )
    .await
    .expect(200, "duplicate");
    let duplicate = monitor.client_commands(&prefix).await;
    assert_eq!(
        duplicate,
        ["EVALSHA"],
        "a duplicate: the binding check and the claim, one script"
    );
    assert_eq!(runs.get(), 2);
}

/// A server that lost its scripts (restarted, or `SCRIPT FLUSH`) gets them again:
/// the store keeps answering.
async fn scripts_are_loaded_again() {
    let server = PrivateRedis::start();
    let prefix = unique_prefix("script-flush");
    let store = RedisStore::builder(server.url())
        .key_prefix(&prefix)
        .connect()
        .await
        .expect("connect");
    let runs = Counter::default();
    let callbacks = counting_receiver(store, &runs);
    send(
        callbacks.service(),
        signed(MusicCallback::complete("before-flush").body()),
    )
    .await
    .expect(200, "processed");
    let mut stream = TcpStream::connect(("127.0.0.1", server.port)).expect("connect");
    stream.write_all(b"SCRIPT FLUSH\r\n").expect("SCRIPT FLUSH");
    let mut reply = String::new();
    BufReader::new(stream).read_line(&mut reply).expect("reply");
    assert!(reply.starts_with("+OK"), "{reply}");
    send(
        callbacks.service(),
        signed(MusicCallback::complete("after-flush").body()),
    )
    .await
    .expect(200, "processed");
    send(
        callbacks.service(),
        signed(MusicCallback::complete("after-flush").body()),
    )
    .await
    .expect(200, "duplicate");
    assert_eq!(runs.get(), 2);
}

async fn built_while_down() {
    let mut server = PrivateRedis::start();
    server.stop();
    let store = RedisStore::builder(server.url())
        .call_timeout(Duration::from_millis(300))
        .connect_timeout(Duration::from_millis(300))
        .build()
        .expect("building does not connect");
    let runs = Counter::default();
    let callbacks = counting_receiver(store, &runs);
    let body = MusicCallback::complete("built-while-down").body();
    let refused = send(callbacks.service(), signed(body.clone())).await;
    refused.expect(503, "unavailable");
    assert_eq!(refused.headers["retry-after"], "30");

    server.restart();
    let started = Instant::now();
    loop {
        let answer = send(callbacks.service(), signed(body.clone())).await;
        if answer.label() == "processed" {
            break;
        }
        answer.expect(503, "unavailable");
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "no recovery in 20 s"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(runs.get(), 1);
}

async fn missing_server() {
    let port = free_port();
    let url = format!("redis://user:hunter2@127.0.0.1:{port}");
    let started = Instant::now();
    let error = RedisStore::connect(&url)
        .await
        .expect_err("nothing listens there");
    let message = error.to_string();
    assert!(error.is_unavailable(), "{message}");
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "a refused connection is reported at once, not after the retries: {:?}",
        started.elapsed()
    );
    assert!(
        message.contains(&format!("127.0.0.1:{port}")) && message.contains("refused"),
        "the error names the server and the cause: {message}"
    );
    assert!(
        !message.contains("hunter2"),
        "no password in errors: {message}"
    );
}

async fn wrong_password() {
    let server = PrivateRedis::start_with(&["--requirepass", "the-right-one"]);
    let url = format!("redis://:hunter2@127.0.0.1:{}", server.port);
    let started = Instant::now();
    let error = RedisStore::connect(&url)
        .await
        .expect_err("the password is wrong");
    let message = error.to_string();
    assert!(
        started.elapsed() < Duration::from_millis(1500),
        "a refused login is reported at once: {:?}",
        started.elapsed()
    );
    assert!(
        message.to_lowercase().contains("pass"),
        "the error says the login was refused: {message}"
    );
    assert!(
        !message.contains("hunter2"),
        "no password in errors: {message}"
    );
    let right = format!("redis://:the-right-one@127.0.0.1:{}", server.port);
    RedisStore::connect(&right)
        .await
        .expect("the right password connects");
}

/// A genuine `text` processed by one replica binds its signature for every replica: its
/// headers reused with a forged `complete` on another replica are refused, and the
/// genuine `complete`, freshly signed, runs.
async fn binding_across_replicas() {
    let prefix = unique_prefix("binding");
    let runs = Counter::default();
    let mut replicas = Vec::new();
    for _ in 0..2 {
        let runs = runs.clone();
        replicas.push(
            SunoCallbacks::builder()
                .hmac_key(KEY)
                .store(store(&prefix).await)
                .fallback(move |_| {
                    runs.bump();
                    async { Ok(()) }
                })
                .build()
                .expect("valid configuration"),
        );
    }
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs() as i64;
    let signer = suno_callback::testing::Signer::new(KEY);
    let text =
        MusicCallback::text("binding-task").signed_request_at(&signer, common::PATH, now - 30);
    let mut forged = suno_callback::testing::unsigned_request(
        common::PATH,
        MusicCallback::complete("binding-task").body(),
    );
    for name in ["x-webhook-timestamp", "x-webhook-signature"] {
        forged
            .headers_mut()
            .insert(name, text.headers()[name].clone());
    }
    send(replicas[0].service(), text)
        .await
        .expect(200, "processed");
    let refused = send(replicas[1].service(), forged).await;
    refused.expect(401, "rejected");
    assert_eq!(
        refused.json["reason"],
        "signature already used by another callback"
    );
    assert_eq!(replicas[1].reused_signatures(), 1);
    let complete =
        MusicCallback::complete("binding-task").signed_request_at(&signer, common::PATH, now);
    send(replicas[1].service(), complete)
        .await
        .expect(200, "processed");
    assert_eq!(runs.get(), 2);
}

/// A replica's handler fails while a duplicate waits on another replica: the failed
/// run releases its claim (token-checked, in Redis), and the waiting replica runs the
/// handler itself instead of answering 409.
async fn failed_run_taken_over() {
    let prefix = unique_prefix("takeover");
    let (entered, release) = (Arc::new(Notify::new()), Arc::new(Notify::new()));
    let failed_runs = Counter::default();
    let failing = {
        let (entered, release, runs) = (
            Arc::clone(&entered),
            Arc::clone(&release),
            failed_runs.clone(),
        );
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .store(store(&prefix).await)
            .on_complete(move |_| {
                let (entered, release) = (Arc::clone(&entered), Arc::clone(&release));
                runs.bump();
                async move {
                    entered.notify_one();
                    release.notified().await;
                    Err(HandlerError::msg("the database is down"))
                }
            })
            .build()
            .expect("valid configuration")
    };
    let runs = Counter::default();
    let healthy = {
        let runs = runs.clone();
        SunoCallbacks::builder()
            .hmac_key(KEY)
            .store(store(&prefix).await)
            .in_flight_wait(Duration::from_secs(5))
            .on_complete(move |_| {
                runs.bump();
                async { Ok(()) }
            })
            .build()
            .expect("valid configuration")
    };
    let body = MusicCallback::complete("takeover-task").body();
    let first = tokio::spawn(send(failing.service(), signed(body.clone())));
    tokio::time::timeout(Duration::from_secs(10), entered.notified())
        .await
        .expect("the first replica's handler started");
    let second = tokio::spawn(send(healthy.service(), signed(body.clone())));
    tokio::time::sleep(Duration::from_millis(100)).await;
    release.notify_one();
    first.await.expect("first").expect(500, "failed");
    second.await.expect("second").expect(200, "processed");
    send(failing.service(), signed(body))
        .await
        .expect(200, "duplicate");
    assert_eq!((failed_runs.get(), runs.get()), (1, 1));
}

/// Two copies of the quickstart with one `REDIS_URL` say they use `RedisStore` and
/// behave as one receiver.
async fn two_quickstarts() {
    let (url, prefix) = (redis_url(), unique_prefix("quickstart"));
    let env = [
        ("SUNO_WEBHOOK_HMAC_KEY", KEY),
        ("REDIS_URL", url.as_str()),
        ("REDIS_KEY_PREFIX", prefix.as_str()),
    ];
    two_quickstarts_are_one_receiver(&env, "RedisStore").await;
}
