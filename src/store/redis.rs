//! A dedup store in Redis, shared by every replica of a service (feature `redis`).

use std::fmt;
use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{AsyncConnectionConfig, Client, RedisError, Script};
use sha2::{Digest, Sha256};

use super::{Binding, Claim, ClaimToken, DedupKey, DedupStore, SignatureUse, StoreError};

/// The key prefix by default.
pub const DEFAULT_KEY_PREFIX: &str = "suno-callback";
/// How long one Redis call may take by default before it counts as unavailable.
pub const DEFAULT_CALL_TIMEOUT: Duration = Duration::from_millis(1000);

/// The value a completed key holds; tokens are 32 hex digits, so never this.
const DONE: &str = "done";

/// Claims on servers older than Redis 7.0, where `SET` cannot combine `NX` and `GET`.
const CLAIM_SCRIPT: &str = r"
local previous = redis.call('GET', KEYS[1])
if previous then return previous end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return false
";

/// Binds a signature and claims a key in one round trip. KEYS: the binding, the
/// claim. ARGV: the use, the binding's TTL, the token, the lease (milliseconds).
/// Returns the binding (0 first, 1 same, 2 other: nothing claimed) and the claim key's
/// previous value (`""` when it was free and is now claimed). A script runs alone on
/// the server, so both halves are as atomic as their own commands.
const BIND_AND_CLAIM_SCRIPT: &str = r"
local bound = redis.call('GET', KEYS[1])
if bound then
  if bound ~= ARGV[1] then return {2, ''} end
else
  redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
end
local previous = redis.call('GET', KEYS[2])
if not previous then
  redis.call('SET', KEYS[2], ARGV[3], 'PX', ARGV[4])
  previous = ''
end
if bound then return {1, previous} end
return {0, previous}
";

/// Marks the key done for the TTL if the caller's token still holds it.
const COMPLETE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[2], 'PX', ARGV[3])
  return 1
end
return 0
";

/// Deletes the key if the caller's token still holds it.
const RELEASE_SCRIPT: &str = r"
if redis.call('GET', KEYS[1]) == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return 1
end
return 0
";

/// A [`DedupStore`] in Redis (or a Redis-compatible server), for several replicas
/// behind a load balancer: a callback claimed by one replica is in flight or done for
/// all of them.
///
/// - **Claim** is one atomic command, `SET key token NX PX lease GET` (one round trip;
///   Redis 7.0 and later; older servers get the same from a small Lua script). The
///   previous value says whether the key was free, in flight, or done.
/// - **Complete** and **release** are Lua scripts that act only if the key still holds
///   the caller's token, so a replica whose lease expired cannot complete or release
///   another replica's claim.
/// - **Keys** are `<prefix>:<sha256 of the task id and the callbackType>`, so no input
///   can collide with another key or escape the prefix.
/// - **Signature bindings** are one atomic `SET <prefix>:sig:<sha256 of task id and
///   timestamp> <use> NX PX ttl GET` each (or the same Lua script as claims on older
///   servers): the first use of a signature sets it, later ones read it. They expire
///   with their TTL, which covers the timestamp's tolerance.
/// - **Bind and claim together**: a signed callback's binding and claim are one Lua
///   script ([`DedupStore::bind_and_claim`], sent as `EVALSHA`, loaded again if the
///   server lost it), so a first delivery costs two round trips (bind and claim,
///   complete) and a duplicate one. The script touches two keys, so the server must
///   not be a Redis Cluster (this store never was one: it talks to one server).
/// - **Faults** fail closed: a call that errors or exceeds the call timeout is
///   [`StoreError::unavailable`], which the pipeline answers `503` without running a
///   handler. The connection is re-established in the background when Redis is back,
///   and a connection on which a call timed out is replaced by a new one, so a
///   connection that silently stopped answering is not waited on for good.
///   A claim whose reply timed out is withdrawn (token-checked) once the server
///   answers again, so it does not hold the callback's retries off for its lease.
///
/// ```no_run
/// use std::time::Duration;
/// use suno_callback::SunoCallbacks;
/// use suno_callback::store::RedisStore;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let store = RedisStore::builder("redis://127.0.0.1:6379")
///     .key_prefix("my-service:suno")
///     .call_timeout(Duration::from_millis(500))
///     .connect()
///     .await?;
/// let callbacks = SunoCallbacks::builder()
///     .hmac_key("webhook-hmac-key")
///     .store(store)
///     .on_complete(|ev| async move { Ok(()) })
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisStore {
    link: Arc<Link>,
    settings: Arc<Settings>,
}

/// The store's connection, replaced when a call on it times out. The redis crate's
/// connection manager reconnects on I/O errors, but a server or a network path that
/// silently stops answering (a half-open TCP connection, a frozen server) gives none:
/// without this, every later call would queue behind the dead connection for good.
struct Link {
    client: Client,
    config: ConnectionManagerConfig,
    current: RwLock<Current>,
}

/// One connection, and which of the link's connections it is.
#[derive(Clone)]
struct Current {
    generation: u64,
    connection: ConnectionManager,
}

impl Link {
    fn new(client: Client, config: ConnectionManagerConfig, connection: ConnectionManager) -> Self {
        Self {
            client,
            config,
            current: RwLock::new(Current {
                generation: 0,
                connection,
            }),
        }
    }

    fn current(&self) -> Current {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces connection `stale`, on which a call timed out, with a new one that
    /// connects on first use; the old one closes when its last pending call ends.
    /// Calls that timed out together replace it once.
    fn replace(&self, stale: u64) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        if current.generation != stale {
            return;
        }
        match ConnectionManager::new_lazy_with_config(self.client.clone(), self.config.clone()) {
            Ok(connection) => {
                *current = Current {
                    generation: stale.wrapping_add(1),
                    connection,
                };
                tracing::warn!("a Redis call timed out; its connection is replaced by a new one");
            }
            Err(error) => tracing::warn!(%error, "cannot set up a new Redis connection"),
        }
    }
}

struct Settings {
    key_prefix: String,
    call_timeout: Duration,
    redacted_url: String,
    claim_script: Script,
    bind_and_claim_script: Script,
    complete_script: Script,
    release_script: Script,
    /// Set once the server refused `SET` with both `NX` and `GET`.
    claim_with_script: AtomicBool,
}

/// Configures a [`RedisStore`]. Made by [`RedisStore::builder`].
pub struct RedisStoreBuilder {
    url: String,
    key_prefix: String,
    call_timeout: Duration,
    connect_timeout: Duration,
    claim_by_script: bool,
}

impl RedisStore {
    /// Connects to the server at `url` (`redis://[user:password@]host:port[/db]`) with
    /// the default settings. Fails if the server cannot be reached now.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the URL cannot be read, the server does not
    /// answer in time, or it refuses the login.
    pub async fn connect(url: &str) -> Result<Self, StoreError> {
        Self::builder(url).connect().await
    }

    /// A builder for a store at `url`.
    pub fn builder(url: impl Into<String>) -> RedisStoreBuilder {
        RedisStoreBuilder {
            url: url.into(),
            key_prefix: DEFAULT_KEY_PREFIX.to_owned(),
            call_timeout: DEFAULT_CALL_TIMEOUT,
            connect_timeout: DEFAULT_CALL_TIMEOUT,
            claim_by_script: false,
        }
    }

    /// The Redis key that holds `key`'s state.
    ///
    /// ```
    /// # async fn run() -> Result<(), suno_callback::store::StoreError> {
    /// use suno_callback::store::{DedupKey, RedisStore};
    /// use suno_callback::{Family, Outcome};
    ///
    /// let store = RedisStore::builder("redis://127.0.0.1:6379").key_prefix("app").build()?;
    /// let key = store.redis_key(&DedupKey::new("task-1", Family::Music, "complete", Outcome::Success));
    /// assert!(key.starts_with("app:"));
    /// assert_eq!(key.len(), "app:".len() + 64);
    /// # Ok(()) }
    /// ```
    pub fn redis_key(&self, key: &DedupKey) -> String {
        let mut hasher = Sha256::new();
        // Length-prefixed fields, so ("ab", "c") and ("a", "bc") hash differently.
        hasher.update(key.canonical_bytes());
        let digest = hasher.finalize();
        let mut redis_key = String::with_capacity(self.settings.key_prefix.len() + 65);
        redis_key.push_str(&self.settings.key_prefix);
        redis_key.push(':');
        push_hex(&mut redis_key, &digest);
        redis_key
    }

    /// Runs one Redis call on connection `generation` within the call timeout.
    async fn call<T>(
        &self,
        generation: u64,
        operation: impl Future<Output = Result<T, RedisError>>,
    ) -> Result<T, StoreError> {
        match tokio::time::timeout(self.settings.call_timeout, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(StoreError::unavailable(error)),
            Err(_elapsed) => {
                self.link.replace(generation);
                Err(StoreError::unavailable("redis call timed out"))
            }
        }
    }

    async fn claim_now(&self, key: &DedupKey, lease: Duration) -> Result<Claim, StoreError> {
        let redis_key = self.redis_key(key);
        let token = ClaimToken::new_unique();
        let previous: Option<String> = if self.settings.claim_with_script.load(Ordering::Relaxed) {
            self.claim_by_script(&redis_key, token, lease).await?
        } else {
            let link = self.link.current();
            let mut connection = link.connection.clone();
            let mut command = redis::cmd("SET");
            command
                .arg(&redis_key)
                .arg(token.to_string())
                .arg("NX")
                .arg("PX")
                .arg(millis(lease))
                .arg("GET");
            let set = command.query_async::<Option<String>>(&mut connection);
            match tokio::time::timeout(self.settings.call_timeout, set).await {
                Ok(Ok(previous)) => previous,
                // A syntax error here means a server older than 7.0.
                Ok(Err(error)) if is_syntax_error(&error) => {
                    self.settings
                        .claim_with_script
                        .store(true, Ordering::Relaxed);
                    self.claim_by_script(&redis_key, token, lease).await?
                }
                Ok(Err(error)) => return Err(StoreError::unavailable(error)),
                Err(_elapsed) => {
                    self.withdraw_claim(link.connection, &redis_key, token, lease);
                    self.link.replace(link.generation);
                    return Err(StoreError::unavailable("redis call timed out"));
                }
            }
        };
        Ok(match previous.as_deref() {
            None => Claim::Acquired(token),
            Some(DONE) => Claim::Done,
            Some(_) => Claim::InFlight,
        })
    }

    async fn claim_by_script(
        &self,
        redis_key: &str,
        token: ClaimToken,
        lease: Duration,
    ) -> Result<Option<String>, StoreError> {
        let link = self.link.current();
        let mut connection = link.connection.clone();
        let mut invocation = self.settings.claim_script.key(redis_key);
        invocation.arg(token.to_string()).arg(millis(lease));
        let claim = invocation.invoke_async(&mut connection);
        match tokio::time::timeout(self.settings.call_timeout, claim).await {
            Ok(Ok(previous)) => Ok(previous),
            Ok(Err(error)) => Err(StoreError::unavailable(error)),
            Err(_elapsed) => {
                self.withdraw_claim(link.connection, redis_key, token, lease);
                self.link.replace(link.generation);
                Err(StoreError::unavailable("redis call timed out"))
            }
        }
    }

    /// Releases, in the background, a claim whose reply timed out. The claim may still
    /// have reached a slow or hung server and taken the key; nobody would settle it,
    /// and every delivery of the callback would find it in flight until its lease
    /// ends. The release goes out on the same connection after the claim, so it runs
    /// after it, and deletes the key only if this token holds it. It waits at most
    /// for the lease, past which the claim has expired anyway.
    fn withdraw_claim(
        &self,
        mut connection: ConnectionManager,
        redis_key: &str,
        token: ClaimToken,
        lease: Duration,
    ) {
        let settings = Arc::clone(&self.settings);
        let redis_key = redis_key.to_owned();
        tokio::spawn(async move {
            let mut invocation = settings.release_script.key(redis_key);
            invocation.arg(token.to_string());
            let release = invocation.invoke_async::<i64>(&mut connection);
            if let Ok(Ok(1)) = tokio::time::timeout(lease, release).await {
                tracing::debug!("withdrew a claim whose reply had timed out");
            }
        });
    }

    /// The Redis key that holds a signature's binding.
    fn binding_key(&self, signature: &SignatureUse) -> String {
        let digest = signature.signature_digest();
        let mut redis_key = String::with_capacity(self.settings.key_prefix.len() + 69);
        redis_key.push_str(&self.settings.key_prefix);
        redis_key.push_str(":sig:");
        push_hex(&mut redis_key, &digest);
        redis_key
    }

    async fn bind_now(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> Result<Binding, StoreError> {
        let redis_key = self.binding_key(signature);
        let mut bound_use = String::with_capacity(64);
        push_hex(&mut bound_use, &signature.use_digest());
        let link = self.link.current();
        let mut connection = link.connection.clone();
        let previous: Option<String> = if self.settings.claim_with_script.load(Ordering::Relaxed) {
            let mut invocation = self.settings.claim_script.key(&redis_key);
            invocation.arg(&bound_use).arg(millis(ttl));
            self.call(link.generation, invocation.invoke_async(&mut connection))
                .await?
        } else {
            let mut command = redis::cmd("SET");
            command
                .arg(&redis_key)
                .arg(&bound_use)
                .arg("NX")
                .arg("PX")
                .arg(millis(ttl))
                .arg("GET");
            match tokio::time::timeout(
                self.settings.call_timeout,
                command.query_async::<Option<String>>(&mut connection),
            )
            .await
            {
                Ok(Ok(previous)) => previous,
                Ok(Err(error)) if is_syntax_error(&error) => {
                    self.settings
                        .claim_with_script
                        .store(true, Ordering::Relaxed);
                    let mut invocation = self.settings.claim_script.key(&redis_key);
                    invocation.arg(&bound_use).arg(millis(ttl));
                    self.call(link.generation, invocation.invoke_async(&mut connection))
                        .await?
                }
                Ok(Err(error)) => return Err(StoreError::unavailable(error)),
                Err(_elapsed) => {
                    // A connection that stopped answering is replaced, as for claims.
                    self.link.replace(link.generation);
                    return Err(StoreError::unavailable("redis call timed out"));
                }
            }
        };
        Ok(match previous {
            None => Binding::First,
            Some(bound) if bound == bound_use => Binding::Same,
            Some(_) => Binding::Other,
        })
    }

    async fn bind_and_claim_now(
        &self,
        signature: &SignatureUse,
        binding_ttl: Duration,
        key: &DedupKey,
        lease: Duration,
    ) -> Result<(Binding, Option<Claim>), StoreError> {
        let binding_key = self.binding_key(signature);
        let redis_key = self.redis_key(key);
        let mut bound_use = String::with_capacity(64);
        push_hex(&mut bound_use, &signature.use_digest());
        let token = ClaimToken::new_unique();
        let link = self.link.current();
        let mut connection = link.connection.clone();
        let mut invocation = self.settings.bind_and_claim_script.key(&binding_key);
        invocation
            .key(&redis_key)
            .arg(&bound_use)
            .arg(millis(binding_ttl))
            .arg(token.to_string())
            .arg(millis(lease));
        let call = invocation.invoke_async::<(i64, String)>(&mut connection);
        let (binding, previous) = match tokio::time::timeout(self.settings.call_timeout, call).await
        {
            Ok(Ok(reply)) => reply,
            Ok(Err(error)) => return Err(StoreError::unavailable(error)),
            Err(_elapsed) => {
                // The script may still run: withdraw its claim, as for a plain claim.
                self.withdraw_claim(link.connection, &redis_key, token, lease);
                self.link.replace(link.generation);
                return Err(StoreError::unavailable("redis call timed out"));
            }
        };
        let binding = match binding {
            0 => Binding::First,
            1 => Binding::Same,
            _ => return Ok((Binding::Other, None)),
        };
        let claim = match previous.as_str() {
            "" => Claim::Acquired(token),
            DONE => Claim::Done,
            _ => Claim::InFlight,
        };
        Ok((binding, Some(claim)))
    }

    async fn complete_now(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> Result<(), StoreError> {
        let link = self.link.current();
        let mut connection = link.connection;
        let mut invocation = self.settings.complete_script.key(self.redis_key(key));
        invocation.arg(token.to_string()).arg(DONE).arg(millis(ttl));
        let held: i64 = self
            .call(link.generation, invocation.invoke_async(&mut connection))
            .await?;
        if held == 1 {
            Ok(())
        } else {
            Err(StoreError::claim_lost())
        }
    }

    async fn release_now(&self, key: &DedupKey, token: ClaimToken) -> Result<(), StoreError> {
        let link = self.link.current();
        let mut connection = link.connection;
        let mut invocation = self.settings.release_script.key(self.redis_key(key));
        invocation.arg(token.to_string());
        let held: i64 = self
            .call(link.generation, invocation.invoke_async(&mut connection))
            .await?;
        if held == 1 {
            Ok(())
        } else {
            Err(StoreError::claim_lost())
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

fn push_hex(out: &mut String, bytes: &[u8]) {
    for byte in bytes {
        out.push(char::from(HEX[usize::from(byte >> 4)]));
        out.push(char::from(HEX[usize::from(byte & 0x0f)]));
    }
}

/// Servers before Redis 7.0 answer `SET .. NX .. GET` with `ERR syntax error`.
fn is_syntax_error(error: &RedisError) -> bool {
    error.code() == Some("ERR")
        && error
            .detail()
            .is_some_and(|detail| detail.contains("syntax"))
}

/// Milliseconds for `PX`, which refuses 0.
fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis())
        .unwrap_or(u64::MAX)
        .max(1)
}

/// The URL without its password, for `Debug` and logs.
fn redact(url: &str) -> String {
    match (url.find("://"), url.rfind('@')) {
        (Some(scheme_end), Some(at)) if at > scheme_end => {
            format!("{}://[redacted]@{}", &url[..scheme_end], &url[at + 1..])
        }
        _ => url.to_owned(),
    }
}

impl RedisStoreBuilder {
    /// The prefix of every key this store writes (default `suno-callback`). Give each
    /// service, or each environment sharing a server, its own.
    #[must_use]
    pub fn key_prefix(mut self, prefix: impl Into<String>) -> Self {
        self.key_prefix = prefix.into();
        self
    }

    /// How long one Redis call may take (default 1 s) before the store counts as
    /// unavailable; keeps a hung server from holding requests past the sender's 15 s.
    #[must_use]
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// How long one connection attempt may take (default 1 s).
    #[must_use]
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// Claims with a Lua script instead of `SET .. NX PX .. GET` (still one atomic
    /// round trip). Servers older than Redis 7.0 are detected and switched to it
    /// automatically; set it for a Redis-compatible server that lacks `SET .. GET`
    /// without saying so with a syntax error.
    #[must_use]
    pub fn claim_by_script(mut self, by_script: bool) -> Self {
        self.claim_by_script = by_script;
        self
    }

    fn manager_config(&self) -> ConnectionManagerConfig {
        // No response timeout on the connection: the store times each call itself, and
        // a withdrawn claim's release must outlive a call's timeout (see
        // `RedisStore::withdraw_claim`).
        ConnectionManagerConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(None)
            .set_min_delay(Duration::from_millis(50))
            .set_max_delay(Duration::from_secs(2))
    }

    fn into_store(self, client: Client, connection: ConnectionManager) -> RedisStore {
        RedisStore {
            link: Arc::new(Link::new(client, self.manager_config(), connection)),
            settings: Arc::new(Settings {
                redacted_url: redact(&self.url),
                key_prefix: self.key_prefix,
                call_timeout: self.call_timeout,
                claim_script: Script::new(CLAIM_SCRIPT),
                bind_and_claim_script: Script::new(BIND_AND_CLAIM_SCRIPT),
                complete_script: Script::new(COMPLETE_SCRIPT),
                release_script: Script::new(RELEASE_SCRIPT),
                claim_with_script: AtomicBool::new(self.claim_by_script),
            }),
        }
    }

    /// One plain connection and `PING`, for a prompt and precise error: the store's own
    /// connection retries with backoff, which suits an outage, but turns a wrong
    /// address or password into a bare timeout.
    async fn first_contact(&self, client: &Client) -> Result<(), StoreError> {
        let limit = self.connect_timeout.saturating_add(self.call_timeout);
        let config = AsyncConnectionConfig::new()
            .set_connection_timeout(Some(self.connect_timeout))
            .set_response_timeout(Some(self.call_timeout));
        let attempt = async {
            let mut connection = client
                .get_multiplexed_async_connection_with_config(&config)
                .await?;
            redis::cmd("PING")
                .query_async::<String>(&mut connection)
                .await
        };
        match tokio::time::timeout(limit, attempt).await {
            Ok(Ok(_pong)) => Ok(()),
            Ok(Err(error)) => Err(StoreError::unavailable(format!(
                "cannot connect to Redis at {}: {error}",
                redact(&self.url)
            ))),
            Err(_elapsed) => Err(StoreError::unavailable(format!(
                "no answer from Redis at {} within {} ms",
                redact(&self.url),
                limit.as_millis()
            ))),
        }
    }

    /// Builds the store without connecting: the first call connects, and until Redis
    /// is reachable every call is [`StoreError::unavailable`]. Fails only on a URL that
    /// cannot be read.
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the URL cannot be read.
    pub fn build(self) -> Result<RedisStore, StoreError> {
        let client = Client::open(self.url.as_str()).map_err(StoreError::unavailable)?;
        let connection =
            ConnectionManager::new_lazy_with_config(client.clone(), self.manager_config())
                .map_err(StoreError::unavailable)?;
        Ok(self.into_store(client, connection))
    }

    /// Builds the store and connects now; fails if Redis cannot be reached, or refuses
    /// the login, with an error that says which (and shows the URL without its
    /// password).
    ///
    /// # Errors
    ///
    /// [`StoreError::unavailable`] when the URL cannot be read, the server does not
    /// answer in time, or it refuses the login.
    pub async fn connect(self) -> Result<RedisStore, StoreError> {
        let client = Client::open(self.url.as_str()).map_err(StoreError::unavailable)?;
        self.first_contact(&client).await?;
        let connecting = ConnectionManager::new_with_config(client.clone(), self.manager_config());
        let limit = self.connect_timeout.saturating_add(self.call_timeout);
        let connection = match tokio::time::timeout(limit, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(StoreError::unavailable(error)),
            Err(_elapsed) => return Err(StoreError::unavailable("redis connect timed out")),
        };
        Ok(self.into_store(client, connection))
    }
}

impl DedupStore for RedisStore {
    fn claim(
        &self,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<Claim, StoreError>> + Send {
        self.claim_now(key, lease)
    }

    fn complete(
        &self,
        key: &DedupKey,
        token: ClaimToken,
        ttl: Duration,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.complete_now(key, token, ttl)
    }

    fn release(
        &self,
        key: &DedupKey,
        token: ClaimToken,
    ) -> impl Future<Output = Result<(), StoreError>> + Send {
        self.release_now(key, token)
    }

    fn bind_signature(
        &self,
        signature: &SignatureUse,
        ttl: Duration,
    ) -> impl Future<Output = Result<Binding, StoreError>> + Send {
        self.bind_now(signature, ttl)
    }

    fn bind_and_claim(
        &self,
        signature: &SignatureUse,
        binding_ttl: Duration,
        key: &DedupKey,
        lease: Duration,
    ) -> impl Future<Output = Result<(Binding, Option<Claim>), StoreError>> + Send {
        self.bind_and_claim_now(signature, binding_ttl, key, lease)
    }
}

impl fmt::Debug for RedisStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStore")
            .field("url", &self.settings.redacted_url)
            .field("key_prefix", &self.settings.key_prefix)
            .field("call_timeout", &self.settings.call_timeout)
            .finish_non_exhaustive()
    }
}

impl fmt::Debug for RedisStoreBuilder {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisStoreBuilder")
            .field("url", &redact(&self.url))
            .field("key_prefix", &self.key_prefix)
            .field("call_timeout", &self.call_timeout)
            .field("connect_timeout", &self.connect_timeout)
            .field("claim_by_script", &self.claim_by_script)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Family, Outcome};

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("redis://user:hunter2@cache.internal:6379/0"),
            "redis://[redacted]@cache.internal:6379/0"
        );
        assert_eq!(redact("redis://127.0.0.1:6379"), "redis://127.0.0.1:6379");
        let builder = RedisStore::builder("rediss://:hunter2@host:6380");
        assert!(!format!("{builder:?}").contains("hunter2"));
    }

    #[tokio::test]
    async fn keys_are_prefixed_hashes_that_do_not_collide() {
        let store = RedisStore::builder("redis://127.0.0.1:1")
            .key_prefix("p")
            .build()
            .expect("a lazy store builds without a server");
        let a = store.redis_key(&DedupKey::new("ab", Family::Music, "c", Outcome::Success));
        let b = store.redis_key(&DedupKey::new("a", Family::Music, "bc", Outcome::Success));
        let c = store.redis_key(&DedupKey::new(
            "p:x\r\n*3",
            Family::Music,
            "complete",
            Outcome::Success,
        ));
        assert_ne!(a, b);
        for key in [&a, &b, &c] {
            assert!(key.starts_with("p:"), "{key}");
            assert_eq!(key.len(), 2 + 64, "{key}");
            assert!(key[2..].bytes().all(|b| b.is_ascii_hexdigit()), "{key}");
        }
        assert!(!format!("{store:?}").contains("password"));
    }
}
