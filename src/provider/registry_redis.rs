//! The registry of expected tasks in Redis (features `provider-api` and `redis`): it
//! survives restarts, and several replicas share it, each task polled by one replica
//! at a time.

use std::fmt;
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{Client, Script};

use super::family::stored_family;
use super::registry::{ExpectedTask, RegistryError, SETTLED_FAMILY_TTL, TaskRegistry};
use crate::event::{ApiRoute, Family};

/// The key prefix by default.
pub const DEFAULT_REGISTRY_PREFIX: &str = "suno-callback:expected";
/// How long one Redis call may take before the registry counts as unavailable.
const CALL_TIMEOUT: Duration = Duration::from_secs(1);

/// Takes the due tasks and leases them, in one atomic step: of two replicas asking at
/// once, each task goes to one. KEYS: due set, task hash; ARGV: now, limit, lease end.
const TAKE_SCRIPT: &str = r"
local ids = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, ARGV[2])
local out = {}
for _, id in ipairs(ids) do
  local info = redis.call('HGET', KEYS[2], id)
  if info then
    redis.call('ZADD', KEYS[1], 'XX', ARGV[3], id)
    table.insert(out, id)
    table.insert(out, info)
  else
    redis.call('ZREM', KEYS[1], id)
  end
end
return out
";

/// Removes a task (`KEYS[1]` due set, `KEYS[2]` task hash, `ARGV[1]` its id) and keeps
/// its value under `KEYS[3]` for `ARGV[2]` seconds, for `family_of` of a late callback;
/// with the family it was keyed as in `ARGV[3]` (`done_as`), that family instead.
const DONE_SCRIPT: &str = r"
local info = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if info then
  if ARGV[3] ~= '' then
    info = ARGV[3] .. ':0'
  end
  redis.call('SET', KEYS[3], info, 'EX', ARGV[2])
end
return 0
";

/// A [`TaskRegistry`] in Redis: a sorted set of task ids by due time
/// (`<prefix>:due`) and a hash of their family, registration time and route
/// (`<prefix>:tasks`). Taking due tasks moves them a lease ahead in the same Lua
/// script, which is the per-task lease: a replica that dies mid-poll leaves the task
/// due again when the lease ends. A task done keeps its value under
/// `<prefix>:settled:<task id>` for [`SETTLED_FAMILY_TTL`] (a Redis expiry), so that a
/// late callback naming no family takes the task's family on every replica.
///
/// ```no_run
/// use suno_callback::SunoCallbacks;
/// use suno_callback::provider::RedisRegistry;
///
/// # async fn run() -> Result<(), Box<dyn std::error::Error>> {
/// let registry = RedisRegistry::connect("redis://127.0.0.1:6379", "my-service:expected").await?;
/// let callbacks = SunoCallbacks::builder()
///     .hmac_key("webhook-hmac-key")
///     .task_registry(registry)
///     .build()?;
/// # Ok(()) }
/// ```
#[derive(Clone)]
pub struct RedisRegistry {
    connection: ConnectionManager,
    due_key: String,
    tasks_key: String,
    /// `{prefix}:settled:`, followed by a task id: the value of a task done, for
    /// [`SETTLED_FAMILY_TTL`].
    settled_prefix: String,
    take_script: Script,
    done_script: Script,
}

impl fmt::Debug for RedisRegistry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisRegistry")
            .field("due_key", &self.due_key)
            .field("tasks_key", &self.tasks_key)
            .finish_non_exhaustive()
    }
}

impl RedisRegistry {
    /// Connects to the server at `url` and keeps tasks under `prefix` (for example
    /// [`DEFAULT_REGISTRY_PREFIX`]). Fails if the server cannot be reached now.
    ///
    /// # Errors
    ///
    /// A [`RegistryError`] when the URL cannot be read, the connection fails, or the
    /// server does not answer within 2 seconds.
    pub async fn connect(url: &str, prefix: &str) -> Result<Self, RegistryError> {
        let client = Client::open(url).map_err(RegistryError::new)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CALL_TIMEOUT))
            .set_response_timeout(Some(CALL_TIMEOUT));
        let connecting = ConnectionManager::new_with_config(client, config);
        let connection = match tokio::time::timeout(CALL_TIMEOUT * 2, connecting).await {
            Ok(Ok(connection)) => connection,
            Ok(Err(error)) => return Err(RegistryError::new(error)),
            Err(_elapsed) => return Err(RegistryError::new("redis connect timed out")),
        };
        Ok(Self::from_connection(connection, prefix))
    }

    /// A registry on an existing connection.
    pub fn from_connection(connection: ConnectionManager, prefix: &str) -> Self {
        Self {
            connection,
            due_key: format!("{prefix}:due"),
            tasks_key: format!("{prefix}:tasks"),
            settled_prefix: format!("{prefix}:settled:"),
            take_script: Script::new(TAKE_SCRIPT),
            done_script: Script::new(DONE_SCRIPT),
        }
    }

    /// Removes a task and keeps its value for late callbacks, with the family it was
    /// keyed as (`""`: the registered one).
    async fn settle(&self, task_id: &str, keyed_as: &str) -> Result<(), RegistryError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.done_script.key(&self.due_key);
        invocation
            .key(&self.tasks_key)
            .key(format!("{}{task_id}", self.settled_prefix))
            .arg(task_id)
            .arg(SETTLED_FAMILY_TTL.as_secs().max(1))
            .arg(keyed_as);
        Self::call(invocation.invoke_async::<()>(&mut connection)).await
    }

    async fn call<T>(
        operation: impl std::future::Future<Output = Result<T, redis::RedisError>>,
    ) -> Result<T, RegistryError> {
        match tokio::time::timeout(CALL_TIMEOUT, operation).await {
            Ok(Ok(value)) => Ok(value),
            Ok(Err(error)) => Err(RegistryError::new(error)),
            Err(_elapsed) => Err(RegistryError::new("redis call timed out")),
        }
    }
}

/// `family:registered_at_ms`, the hash's value, followed by `:jobs` for a jobs-route
/// task (a classic one keeps the value of the versions that kept no route).
fn encode(task: &ExpectedTask) -> String {
    match task.route() {
        ApiRoute::Classic => format!("{}:{}", task.family(), task.registered_at_ms()),
        route => format!("{}:{}:{route}", task.family(), task.registered_at_ms()),
    }
}

fn decode(task_id: String, info: &str) -> Option<ExpectedTask> {
    let mut parts = info.splitn(3, ':');
    let family = stored_family(parts.next()?)?;
    let at = parts.next()?.parse().ok()?;
    let route = match parts.next() {
        None => ApiRoute::Classic,
        Some(route) => ApiRoute::from_name(route)?,
    };
    Some(ExpectedTask::new(task_id, family, at).with_route(route))
}

impl TaskRegistry for RedisRegistry {
    async fn expect(&self, task: ExpectedTask, due_ms: u64) -> Result<(), RegistryError> {
        let mut connection = self.connection.clone();
        let mut pipe = redis::pipe();
        pipe.atomic()
            .hset(&self.tasks_key, task.task_id(), encode(&task))
            .ignore()
            .zadd(&self.due_key, task.task_id(), due_ms)
            .ignore();
        Self::call(pipe.query_async::<()>(&mut connection)).await
    }

    async fn take_due(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> Result<Vec<ExpectedTask>, RegistryError> {
        let mut connection = self.connection.clone();
        let mut invocation = self.take_script.key(&self.due_key);
        invocation
            .key(&self.tasks_key)
            .arg(now_ms)
            .arg(limit)
            .arg(now_ms.saturating_add(lease_ms));
        let flat: Vec<String> = Self::call(invocation.invoke_async(&mut connection)).await?;
        let mut tasks = Vec::with_capacity(flat.len() / 2);
        let mut items = flat.into_iter();
        while let (Some(id), Some(info)) = (items.next(), items.next()) {
            match decode(id, &info) {
                Some(task) => tasks.push(task),
                None => tracing::warn!("unreadable expected task in the Redis registry"),
            }
        }
        Ok(tasks)
    }

    async fn reschedule(&self, task_id: &str, due_ms: u64) -> Result<(), RegistryError> {
        let mut connection = self.connection.clone();
        let mut command = redis::cmd("ZADD");
        command
            .arg(&self.due_key)
            .arg("XX")
            .arg(due_ms)
            .arg(task_id);
        Self::call(command.query_async::<()>(&mut connection)).await
    }

    async fn done(&self, task_id: &str) -> Result<(), RegistryError> {
        self.settle(task_id, "").await
    }

    async fn done_as(&self, task_id: &str, keyed_as: Family) -> Result<(), RegistryError> {
        self.settle(task_id, keyed_as.as_str()).await
    }

    /// The registered task's family, else the family of the task done (one round trip
    /// for both).
    async fn family_of(&self, task_id: &str) -> Result<Option<Family>, RegistryError> {
        let mut connection = self.connection.clone();
        let mut pipe = redis::pipe();
        pipe.hget(&self.tasks_key, task_id)
            .get(format!("{}{task_id}", self.settled_prefix));
        let (registered, settled): (Option<String>, Option<String>) =
            Self::call(pipe.query_async(&mut connection)).await?;
        Ok(registered
            .or(settled)
            .and_then(|info| decode(task_id.to_owned(), &info).map(|t| t.family())))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_without_a_route_are_classic_and_unknown_routes_unreadable() {
        let classic = ExpectedTask::new("t", Family::Wav, 7);
        assert_eq!(encode(&classic), "wav:7", "the value of earlier versions");
        assert_eq!(decode("t".into(), "wav:7"), Some(classic));
        let jobs = ExpectedTask::new("t", Family::Unknown, 8).with_route(ApiRoute::Jobs);
        assert_eq!(encode(&jobs), "unknown:8:jobs");
        assert_eq!(decode("t".into(), "unknown:8:jobs"), Some(jobs));
        assert_eq!(decode("t".into(), "music:8:pigeon"), None);
        assert_eq!(decode("t".into(), "hologram:8"), None);
    }
}
