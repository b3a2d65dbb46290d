//! The operator's reads and actions over the inbox's database: what the console and the
//! `suno-inbox` command-line tool show and do.
//!
//! Every read is bounded: lists are keyset-paginated newest first (`id < cursor`, one
//! index range per filter, see migration 0005), and counts stop at a cap. A count that
//! would have to read past the cap is reported as such ([`Count::AtLeast`]) or, where the
//! database keeps statistics (PostgreSQL's planner, the table's id range), as an
//! estimate ([`Count::Estimated`]); [`Count`]'s `Display` labels both.
//!
//! ```no_run
//! # async fn run() -> Result<(), suno_callback::inbox::InboxError> {
//! use suno_callback::inbox::{EventFilter, EventState, Inbox};
//!
//! let inbox = Inbox::builder().connect("sqlite://suno-inbox.db").await?;
//! let admin = inbox.admin();
//! let dead = EventFilter { state: Some(EventState::Dead), ..EventFilter::default() };
//! let page = admin.list(&dead, None, 50).await?;
//! for event in &page.events {
//!     println!("{} {} {:?}", event.id, event.task_id, event.last_error);
//! }
//! let preview = admin.count(&dead, 1_000).await?;
//! println!("{preview} dead events");
//! let replayed = admin.replay_matching(&dead, 1_000).await?;
//! println!("{replayed} replayed");
//! # Ok(()) }
//! ```

use std::fmt;
use std::time::Duration;

use bytes::Bytes;

use super::Inbox;
use super::backend::Backend;
use super::error::InboxError;
use super::types::EventState;

/// How many rows a count reads at most before it reports [`Count::AtLeast`] or an
/// estimate.
pub const COUNT_CAP: u64 = 10_000;

/// The longest last error a list row carries (the event itself has it whole).
pub const LIST_ERROR_CHARS: usize = 120;

/// The most rows one list page returns.
pub const MAX_PAGE: usize = 500;

/// How many events one bulk replay changes at most by default.
pub const DEFAULT_REPLAY_CAP: u64 = 1_000;

/// A number of events: exact, a lower bound, or an estimate.
///
/// ```
/// use suno_callback::inbox::Count;
///
/// assert_eq!(Count::Exact(1234).to_string(), "1234");
/// assert_eq!(Count::AtLeast(10_001).to_string(), "more than 10000");
/// assert_eq!(Count::Estimated(1_000_000).to_string(), "about 1000000 (estimated)");
/// assert_eq!(Count::Estimated(7).value(), 7);
/// ```
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Count {
    /// Counted.
    Exact(u64),
    /// Counting stopped at this many: there are at least as many (one more than the cap).
    AtLeast(u64),
    /// Estimated from the database's statistics, without reading the rows.
    Estimated(u64),
}

impl Count {
    /// The number, whatever its kind.
    pub fn value(self) -> u64 {
        match self {
            Self::Exact(n) | Self::AtLeast(n) | Self::Estimated(n) => n,
        }
    }

    /// Whether the number was counted.
    pub fn is_exact(self) -> bool {
        matches!(self, Self::Exact(_))
    }
}

impl fmt::Display for Count {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Exact(n) => write!(f, "{n}"),
            Self::AtLeast(n) => write!(f, "more than {}", n.saturating_sub(1)),
            Self::Estimated(n) => write!(f, "about {n} (estimated)"),
        }
    }
}

/// Which events a list, a count or a bulk replay takes. Every field left `None` takes
/// all.
///
/// ```
/// use suno_callback::inbox::{EventFilter, EventState};
///
/// let filter = EventFilter {
///     state: Some(EventState::Dead),
///     family: Some("music".into()),
///     ..EventFilter::default()
/// };
/// assert!(!filter.is_empty());
/// assert!(EventFilter::default().is_empty());
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct EventFilter {
    /// Events in this state.
    pub state: Option<EventState>,
    /// Events of this family (`music`, `wav`, …, `unknown`).
    pub family: Option<String>,
    /// `success` or `failure`.
    pub outcome: Option<String>,
    /// Events of this task.
    pub task_id: Option<String>,
    /// Received at or after this time (Unix milliseconds). Time bounds rely on ids
    /// following arrival order (as the inbox assigns them): an event stored out of
    /// order by a few milliseconds, at the edge of a bound, may be left out.
    pub received_from_ms: Option<i64>,
    /// Received before this time (Unix milliseconds).
    pub received_until_ms: Option<i64>,
}

impl EventFilter {
    /// Whether the filter takes every event.
    pub fn is_empty(&self) -> bool {
        *self == Self::default()
    }
}

/// One event in a list: its columns without the body, its last error cut short.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventRow {
    /// The row's id.
    pub id: i64,
    /// The task id.
    pub task_id: String,
    /// The family (`music`, …, `unknown`).
    pub family: String,
    /// The key's stage (`""` for families without stages).
    pub stage: String,
    /// `success` or `failure`.
    pub outcome: String,
    /// The state.
    pub state: EventState,
    /// How many handler runs were started.
    pub attempts: u32,
    /// When it was received (Unix milliseconds).
    pub received_at_ms: i64,
    /// When it was done or dead (Unix milliseconds).
    pub finished_at_ms: Option<i64>,
    /// The last failure's text (in a list, cut to [`LIST_ERROR_CHARS`]).
    pub last_error: Option<String>,
}

/// One page of events, newest first.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventPage {
    /// The events.
    pub events: Vec<EventRow>,
    /// The cursor of the next (older) page, if there is one: pass it as `before`.
    pub next_before: Option<i64>,
}

/// One event in full: its row, when it runs next, and the body as received.
#[derive(Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct EventDetail {
    /// Its columns, the last error whole.
    pub row: EventRow,
    /// Pending: when it may run; running: when its lease ends (Unix milliseconds).
    pub run_after_ms: i64,
    /// The body exactly as received (attacker text: escape it before showing it).
    pub body: Bytes,
    /// The task's other events, oldest first (at most 100).
    pub siblings: Vec<EventRow>,
}

impl fmt::Debug for EventDetail {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("EventDetail")
            .field("row", &self.row)
            .field("run_after_ms", &self.run_after_ms)
            .field("body_len", &self.body.len())
            .field("siblings", &self.siblings.len())
            .finish()
    }
}

/// Events accepted and done in one minute.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Minute {
    /// The minute's start (Unix milliseconds).
    pub start_ms: i64,
    /// Events received in it.
    pub accepted: u64,
    /// Events whose handler run succeeded in it.
    pub done: u64,
}

/// The expected tasks of the reconciler's registry, as counts.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpectedSummary {
    /// Tasks registered.
    pub total: Count,
    /// Tasks due for a poll now.
    pub due: Count,
    /// Tasks registered longer ago than the overdue age.
    pub overdue: Count,
}

/// What the console's overview shows.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Overview {
    /// Events in each state: pending, running, done, dead.
    pub states: Vec<(EventState, Count)>,
    /// Events of each family that has any.
    pub families: Vec<(String, Count)>,
    /// All events.
    pub total: Count,
    /// How long ago the oldest pending or running event was received.
    pub oldest_pending_age: Option<Duration>,
    /// Accepted and done per minute over the last hour, oldest first (60 minutes, the
    /// current one last).
    pub minutes: Vec<Minute>,
    /// The expected tasks, when the database has the registry's table.
    pub expected: Option<ExpectedSummary>,
}

/// One expected task of the reconciler's registry.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ExpectedRow {
    /// The task id.
    pub task_id: String,
    /// Its family.
    pub family: String,
    /// When it was registered (Unix milliseconds).
    pub registered_at_ms: i64,
    /// When it is next due for a poll (Unix milliseconds).
    pub due_at_ms: i64,
    /// What its last poll got (`"pending: nothing to deliver yet"`, `"request failed:
    /// …"`) and when (Unix milliseconds); `None` before its first poll.
    pub last_poll: Option<(String, i64)>,
}

/// The operator's reads and actions on an inbox's database. Get it from
/// [`Inbox::admin`]; clones share the inbox's pool.
#[derive(Clone, Debug)]
pub struct InboxAdmin {
    inbox: Inbox,
}

impl Inbox {
    /// The operator's reads and actions on this inbox's database (what the console and
    /// the `suno-inbox` command-line tool use).
    pub fn admin(&self) -> InboxAdmin {
        InboxAdmin {
            inbox: self.clone(),
        }
    }
}

/// A bound value.
#[derive(Debug)]
enum Arg {
    Int(i64),
    Text(String),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Dialect {
    #[cfg(feature = "sqlite")]
    Sqlite,
    #[cfg(feature = "postgres")]
    Postgres,
}

impl Dialect {
    /// The database's time in Unix milliseconds, as SQL.
    fn now(self) -> &'static str {
        match self {
            #[cfg(feature = "sqlite")]
            Self::Sqlite => "CAST((julianday('now') - 2440587.5) * 86400000 AS INTEGER)",
            #[cfg(feature = "postgres")]
            Self::Postgres => "floor(extract(epoch from now()) * 1000)::bigint",
        }
    }
}

/// A statement being built with numbered placeholders (`?1` or `$1`).
#[derive(Debug)]
struct Sql {
    dialect: Dialect,
    text: String,
    args: Vec<Arg>,
}

impl Sql {
    fn new(dialect: Dialect, text: &str) -> Self {
        Self {
            dialect,
            text: text.replace("{now}", dialect.now()),
            args: Vec::new(),
        }
    }

    fn push(&mut self, text: &str) -> &mut Self {
        self.text
            .push_str(&text.replace("{now}", self.dialect.now()));
        self
    }

    /// Appends a placeholder for `arg`.
    fn bind(&mut self, arg: Arg) -> &mut Self {
        self.args.push(arg);
        let n = self.args.len();
        match self.dialect {
            #[cfg(feature = "sqlite")]
            Dialect::Sqlite => self.text.push_str(&format!("?{n}")),
            #[cfg(feature = "postgres")]
            Dialect::Postgres => self.text.push_str(&format!("${n}")),
        }
        self
    }

    /// ` WHERE …` for `filter` (and `extra`, already SQL), or nothing.
    fn filter(&mut self, filter: &EventFilter, extra: &[&str]) -> &mut Self {
        let mut first = true;
        let mut and = |sql: &mut Self| {
            sql.push(if first { " WHERE " } else { " AND " });
            first = false;
        };
        if let Some(state) = filter.state {
            and(self);
            self.push("state = ")
                .bind(Arg::Text(state.as_str().to_owned()));
        }
        if let Some(family) = &filter.family {
            and(self);
            self.push("family = ").bind(Arg::Text(family.clone()));
        }
        if let Some(outcome) = &filter.outcome {
            and(self);
            self.push("outcome = ").bind(Arg::Text(outcome.clone()));
        }
        if let Some(task_id) = &filter.task_id {
            and(self);
            self.push("task_id = ").bind(Arg::Text(task_id.clone()));
        }
        // A time bound is also an id bound (ids follow arrival), so that a scan newest
        // first starts and stops at the range instead of reading past it.
        const FIRST_AT: &str = "COALESCE((SELECT id FROM suno_inbox_events WHERE received_at >= ";
        const FIRST_END: &str = " ORDER BY received_at, id LIMIT 1), 9223372036854775807)";
        if let Some(from) = filter.received_from_ms {
            and(self);
            self.push("received_at >= ").bind(Arg::Int(from));
            self.push(" AND id >= ")
                .push(FIRST_AT)
                .bind(Arg::Int(from))
                .push(FIRST_END);
        }
        if let Some(until) = filter.received_until_ms {
            and(self);
            self.push("received_at < ").bind(Arg::Int(until));
            self.push(" AND id < ")
                .push(FIRST_AT)
                .bind(Arg::Int(until))
                .push(FIRST_END);
        }
        for condition in extra {
            and(self);
            self.push(condition);
        }
        self
    }
}

/// Runs `$body` with `$pool` the pool and `$dialect` the dialect of the backend in use.
macro_rules! with_pool {
    ($backend:expr, $pool:ident => $body:expr) => {
        match $backend {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(backend) => {
                let $pool = backend.pool();
                $body
            }
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => {
                let $pool = backend.pool();
                $body
            }
        }
    };
}

/// `sqlx::query_as` (or `query`, `query_scalar`) of `$sql` with its arguments bound.
macro_rules! bound {
    ($make:path, $sql:expr) => {{
        let mut query = $make(&$sql.text);
        for arg in &$sql.args {
            query = match arg {
                Arg::Int(value) => query.bind(*value),
                Arg::Text(value) => query.bind(value.as_str()),
            };
        }
        query
    }};
}

/// The columns of a list row, in [`RowColumns`] order.
const ROW_COLUMNS: &str = "id, task_id, family, stage, outcome, state, \
     CAST(attempts AS BIGINT), received_at, finished_at";

type RowColumns = (
    i64,
    String,
    String,
    String,
    String,
    String,
    i64,
    i64,
    Option<i64>,
    Option<String>,
);

fn read_row(columns: RowColumns) -> EventRow {
    let (id, task_id, family, stage, outcome, state, attempts, received, finished, error) = columns;
    EventRow {
        id,
        task_id,
        family,
        stage,
        outcome,
        state: EventState::from_column(&state).unwrap_or(EventState::Pending),
        attempts: u32::try_from(attempts).unwrap_or(0),
        received_at_ms: received,
        finished_at_ms: finished,
        last_error: error,
    }
}

/// What PostgreSQL's statistics say of the table.
#[derive(Debug)]
struct TableStatistics {
    rows: u64,
    /// `(column, value, share of the rows)`.
    shares: Vec<(String, String, f64)>,
}

/// The elements of a PostgreSQL array's text (`{done,dead}`, `{0.97,0.02}`); the values
/// read here (states, families, numbers) need no quoting, and quotes are dropped.
#[cfg(feature = "postgres")]
fn pg_array(text: &str) -> Vec<String> {
    text.trim_start_matches('{')
        .trim_end_matches('}')
        .split(',')
        .map(|item| item.trim_matches('"').to_owned())
        .filter(|item| !item.is_empty())
        .collect()
}

#[cfg(feature = "postgres")]
/// The first number PostgreSQL's planner gives as `rows=` in an `EXPLAIN` line.
fn planned_rows(line: &str) -> Option<u64> {
    let rest = &line[line.find("rows=")? + 5..];
    let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

impl InboxAdmin {
    fn backend(&self) -> &Backend {
        self.inbox.backend()
    }

    fn dialect(&self) -> Dialect {
        match self.backend() {
            #[cfg(feature = "sqlite")]
            Backend::Sqlite(_) => Dialect::Sqlite,
            #[cfg(feature = "postgres")]
            Backend::Postgres(_) => Dialect::Postgres,
        }
    }

    fn sql(&self, text: &str) -> Sql {
        Sql::new(self.dialect(), text)
    }

    async fn rows(&self, sql: &Sql) -> Result<Vec<RowColumns>, InboxError> {
        Ok(with_pool!(self.backend(), pool => {
            bound!(sqlx::query_as, sql).fetch_all(pool).await?
        }))
    }

    async fn scalar(&self, sql: &Sql) -> Result<Option<i64>, InboxError> {
        Ok(with_pool!(self.backend(), pool => {
            bound!(sqlx::query_scalar, sql).fetch_one(pool).await?
        }))
    }

    async fn execute(&self, sql: &Sql) -> Result<u64, InboxError> {
        Ok(with_pool!(self.backend(), pool => {
            bound!(sqlx::query, sql).execute(pool).await?.rows_affected()
        }))
    }

    /// One page of the events `filter` takes, newest first, older than the event
    /// `before` when given; at most `limit` (capped at [`MAX_PAGE`]) rows.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the query
    /// fails.
    pub async fn list(
        &self,
        filter: &EventFilter,
        before: Option<i64>,
        limit: usize,
    ) -> Result<EventPage, InboxError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut sql = self.sql(&format!(
            "SELECT {ROW_COLUMNS}, substr(last_error, 1, {LIST_ERROR_CHARS}) FROM suno_inbox_events"
        ));
        let cursor;
        let extra: &[&str] = match before {
            Some(before) => {
                cursor = format!("id < {before}");
                &[cursor.as_str()]
            }
            None => &[],
        };
        sql.filter(filter, extra)
            .push(" ORDER BY id DESC LIMIT ")
            .bind(Arg::Int(i64::try_from(limit + 1).unwrap_or(i64::MAX)));
        let mut events: Vec<EventRow> = self.rows(&sql).await?.into_iter().map(read_row).collect();
        let next_before = if events.len() > limit {
            events.truncate(limit);
            events.last().map(|event| event.id)
        } else {
            None
        };
        Ok(EventPage {
            events,
            next_before,
        })
    }

    /// How many events `filter` takes, counted up to `cap` rows. Past the cap:
    /// PostgreSQL's planner estimate when it is higher, else [`Count::AtLeast`].
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the count
    /// (or, past the cap, the planner's `EXPLAIN`) fails.
    pub async fn count(&self, filter: &EventFilter, cap: u64) -> Result<Count, InboxError> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX - 1);
        let mut sql = self.sql("SELECT COUNT(*) FROM (SELECT 1 FROM suno_inbox_events");
        sql.filter(filter, &[])
            .push(" LIMIT ")
            .bind(Arg::Int(cap + 1))
            .push(") capped");
        let counted = u64::try_from(self.scalar(&sql).await?.unwrap_or(0)).unwrap_or(0);
        if counted <= u64::try_from(cap).unwrap_or(0) {
            return Ok(Count::Exact(counted));
        }
        match self.planner_estimate(filter).await? {
            Some(estimate) if estimate > counted => Ok(Count::Estimated(estimate)),
            _ => Ok(Count::AtLeast(counted)),
        }
    }

    /// PostgreSQL's planner estimate of the rows `filter` takes; `None` on SQLite.
    async fn planner_estimate(&self, filter: &EventFilter) -> Result<Option<u64>, InboxError> {
        match self.backend() {
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => {
                let mut sql = self.sql("EXPLAIN SELECT 1 FROM suno_inbox_events");
                sql.filter(filter, &[]);
                let lines: Vec<String> = bound!(sqlx::query_scalar, sql)
                    .fetch_all(backend.pool())
                    .await?;
                Ok(lines.first().and_then(|line| planned_rows(line)))
            }
            #[allow(unreachable_patterns)]
            _ => {
                let _ = filter;
                Ok(None)
            }
        }
    }

    /// `(SELECT COUNT(*) …)` of the rows `filter` takes, stopping after `cap + 1`.
    fn push_capped(sql: &mut Sql, filter: &EventFilter, cap: u64) {
        sql.push("(SELECT COUNT(*) FROM (SELECT 1 FROM suno_inbox_events");
        sql.filter(filter, &[])
            .push(" LIMIT ")
            .bind(Arg::Int(i64::try_from(cap + 1).unwrap_or(i64::MAX)))
            .push(") capped)");
    }

    /// One row of nullable integers.
    async fn integers(&self, sql: &Sql, columns: usize) -> Result<Vec<Option<i64>>, InboxError> {
        Ok(with_pool!(self.backend(), pool => {
            let row = bound!(sqlx::query, sql).fetch_one(pool).await?;
            (0..columns)
                .map(|i| sqlx::Row::try_get::<Option<i64>, _>(&row, i))
                .collect::<Result<Vec<_>, _>>()?
        }))
    }

    /// PostgreSQL's statistics of the table: its estimated rows and the share of the
    /// most common values of `state` and `family`. Nothing on SQLite.
    async fn table_statistics(&self) -> Result<Option<TableStatistics>, InboxError> {
        match self.backend() {
            #[cfg(feature = "postgres")]
            Backend::Postgres(backend) => {
                let rows: i64 = sqlx::query_scalar(
                    "SELECT GREATEST(reltuples, 0)::bigint FROM pg_class \
                     WHERE oid = 'suno_inbox_events'::regclass",
                )
                .fetch_one(backend.pool())
                .await?;
                let columns: Vec<(String, Option<String>, Option<String>)> = sqlx::query_as(
                    "SELECT attname::text, most_common_vals::text, most_common_freqs::text \
                     FROM pg_stats WHERE schemaname = current_schema() \
                     AND tablename = 'suno_inbox_events' AND attname IN ('state', 'family')",
                )
                .fetch_all(backend.pool())
                .await?;
                let mut shares = Vec::new();
                for (column, values, freqs) in columns {
                    let (Some(values), Some(freqs)) = (values, freqs) else {
                        continue;
                    };
                    for (value, freq) in pg_array(&values).into_iter().zip(pg_array(&freqs)) {
                        if let Ok(freq) = freq.parse::<f64>() {
                            shares.push((column.clone(), value, freq));
                        }
                    }
                }
                Ok(Some(TableStatistics {
                    rows: u64::try_from(rows).unwrap_or(0),
                    shares,
                }))
            }
            #[allow(unreachable_patterns)]
            _ => Ok(None),
        }
    }

    /// The overview: events by state and family, the oldest pending age, accepted and
    /// done per minute over the last hour, and the expected tasks (older than
    /// `overdue_after` is overdue). Three statements (four on PostgreSQL, which adds
    /// its statistics for the estimates), whatever the size of the table.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the counts,
    /// the table's statistics or the last hour's query fail. A database without the
    /// registry table is not an error: `expected` is then `None`.
    pub async fn overview(&self, overdue_after: Duration) -> Result<Overview, InboxError> {
        const STATES: [EventState; 4] = [
            EventState::Pending,
            EventState::Running,
            EventState::Done,
            EventState::Dead,
        ];
        let families: Vec<&'static str> = crate::Family::ALL
            .iter()
            .map(|family| family.as_str())
            .chain(["unknown"])
            .collect();
        // The counts, the id range and the oldest pending age in one statement.
        let mut sql = self.sql("SELECT ");
        Self::push_capped(&mut sql, &EventFilter::default(), COUNT_CAP);
        // Two subqueries: SQLite reads `MAX(id) - MIN(id)` by a scan, each alone by one
        // step into the primary key.
        sql.push(
            ", (SELECT MAX(id) FROM suno_inbox_events) - (SELECT MIN(id) FROM suno_inbox_events) + 1",
        );
        // The oldest unfinished event is the one with the lowest id of its state: one
        // step into each state's index.
        sql.push(
            ", (SELECT {now} - MIN(received_at) FROM (\
             SELECT (SELECT received_at FROM suno_inbox_events WHERE state = 'pending' \
             ORDER BY id LIMIT 1) AS received_at \
             UNION ALL SELECT (SELECT received_at FROM suno_inbox_events WHERE state = 'running' \
             ORDER BY id LIMIT 1)) oldest)",
        );
        for state in STATES {
            sql.push(", ");
            let filter = EventFilter {
                state: Some(state),
                ..EventFilter::default()
            };
            Self::push_capped(&mut sql, &filter, COUNT_CAP);
        }
        for family in &families {
            sql.push(", ");
            let filter = EventFilter {
                family: Some((*family).to_owned()),
                ..EventFilter::default()
            };
            Self::push_capped(&mut sql, &filter, COUNT_CAP);
        }
        let values = self
            .integers(&sql, 3 + STATES.len() + families.len())
            .await?;
        let value =
            |i: usize| u64::try_from(values.get(i).copied().flatten().unwrap_or(0)).unwrap_or(0);
        let capped = |n: u64| {
            if n > COUNT_CAP {
                Count::AtLeast(n)
            } else {
                Count::Exact(n)
            }
        };
        let statistics = if (0..values.len()).any(|i| i != 1 && i != 2 && value(i) > COUNT_CAP) {
            self.table_statistics().await?
        } else {
            None
        };
        let estimate = |count: Count, column: &str, of: &str| match (&statistics, count) {
            (Some(statistics), Count::AtLeast(at_least)) => {
                let share = statistics
                    .shares
                    .iter()
                    .find(|(c, v, _)| c == column && v == of)
                    .map_or(0.0, |(_, _, share)| *share);
                let estimate = (statistics.rows as f64 * share) as u64;
                if estimate > at_least {
                    Count::Estimated(estimate)
                } else {
                    count
                }
            }
            _ => count,
        };
        let total = match capped(value(0)) {
            Count::AtLeast(at_least) => {
                let rows = statistics.as_ref().map_or(0, |s| s.rows);
                let rows = if rows > at_least { rows } else { value(1) };
                if rows > at_least {
                    Count::Estimated(rows)
                } else {
                    Count::AtLeast(at_least)
                }
            }
            exact => exact,
        };
        let mut states: Vec<(EventState, Count)> = STATES
            .iter()
            .enumerate()
            .map(|(i, state)| {
                (
                    *state,
                    estimate(capped(value(3 + i)), "state", state.as_str()),
                )
            })
            .collect();
        // Done is most of a large table: the total less the others, if they were counted.
        let others_exact = states
            .iter()
            .all(|(state, count)| *state == EventState::Done || count.is_exact());
        if others_exact && !total.is_exact() {
            let others: u64 = states
                .iter()
                .filter(|(state, _)| *state != EventState::Done)
                .map(|(_, count)| count.value())
                .sum();
            if let Some((_, done)) = states
                .iter_mut()
                .find(|(state, _)| *state == EventState::Done)
            {
                let estimate = total.value().saturating_sub(others);
                if !done.is_exact() && estimate > done.value() {
                    *done = Count::Estimated(estimate);
                }
            }
        }
        let families = families
            .iter()
            .enumerate()
            .map(|(i, family)| {
                let count = capped(value(3 + STATES.len() + i));
                ((*family).to_owned(), estimate(count, "family", family))
            })
            .filter(|(_, count)| count.value() > 0)
            .collect();
        let oldest_pending_age = values
            .get(2)
            .copied()
            .flatten()
            .map(|ms| Duration::from_millis(u64::try_from(ms).unwrap_or(0)));
        Ok(Overview {
            states,
            families,
            total,
            oldest_pending_age,
            minutes: self.last_hour().await?,
            expected: self.expected_summary(overdue_after).await?,
        })
    }

    /// Accepted and done per minute over the last hour, in one statement: rows of
    /// `(kind, minute, count)`, kind 0 accepted, 1 done, 2 the current minute.
    async fn last_hour(&self) -> Result<Vec<Minute>, InboxError> {
        let sql = self.sql(
            "SELECT 0, received_at / 60000, COUNT(*) FROM suno_inbox_events \
             WHERE received_at >= ({now} / 60000 - 59) * 60000 GROUP BY 2 \
             UNION ALL SELECT 1, finished_at / 60000, COUNT(*) FROM suno_inbox_events \
             WHERE state IN ('done', 'dead') AND state = 'done' \
             AND finished_at >= ({now} / 60000 - 59) * 60000 GROUP BY 2 \
             UNION ALL SELECT 2, {now} / 60000, 0",
        );
        let rows: Vec<(i32, i64, i64)> = with_pool!(self.backend(), pool => {
            bound!(sqlx::query_as, sql).fetch_all(pool).await?
        });
        let this_minute = rows
            .iter()
            .find(|(kind, _, _)| *kind == 2)
            .map_or(0, |(_, minute, _)| *minute);
        let first = this_minute - 59;
        let mut minutes: Vec<Minute> = (0..60)
            .map(|i| Minute {
                start_ms: (first + i) * 60_000,
                ..Minute::default()
            })
            .collect();
        for (kind, minute, count) in rows {
            let Some(slot) = usize::try_from(minute - first)
                .ok()
                .and_then(|i| minutes.get_mut(i))
            else {
                continue;
            };
            let count = u64::try_from(count).unwrap_or(0);
            match kind {
                0 => slot.accepted = count,
                1 => slot.done = count,
                _ => {}
            }
        }
        Ok(minutes)
    }

    /// One event in full, with the task's other events; `None` if there is none.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the query of
    /// the event or of its task's other events fails.
    pub async fn event(&self, id: i64) -> Result<Option<EventDetail>, InboxError> {
        let mut sql = self.sql(&format!(
            "SELECT {ROW_COLUMNS}, last_error, run_after, body FROM suno_inbox_events WHERE id = "
        ));
        sql.bind(Arg::Int(id));
        type Full = (
            i64,
            String,
            String,
            String,
            String,
            String,
            i64,
            i64,
            Option<i64>,
            Option<String>,
            i64,
            Vec<u8>,
        );
        let row: Option<Full> = with_pool!(self.backend(), pool => {
            bound!(sqlx::query_as, sql).fetch_optional(pool).await?
        });
        let Some((a, b, c, d, e, f, g, h, i, j, run_after_ms, body)) = row else {
            return Ok(None);
        };
        let row = read_row((a, b, c, d, e, f, g, h, i, j));
        let mut siblings = self.sql(&format!(
            "SELECT {ROW_COLUMNS}, substr(last_error, 1, {LIST_ERROR_CHARS}) \
             FROM suno_inbox_events WHERE task_id = "
        ));
        siblings
            .bind(Arg::Text(row.task_id.clone()))
            .push(" AND id <> ")
            .bind(Arg::Int(id))
            .push(" ORDER BY id LIMIT 100");
        let siblings = self
            .rows(&siblings)
            .await?
            .into_iter()
            .map(read_row)
            .collect();
        Ok(Some(EventDetail {
            row,
            run_after_ms,
            body: Bytes::from(body),
            siblings,
        }))
    }

    /// Replays one done or dead event; returns how many (0 or 1).
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the update
    /// fails (as for [`Inbox::replay`]).
    pub async fn replay_event(&self, id: i64) -> Result<u64, InboxError> {
        self.inbox.replay(super::Replay::Event(id)).await
    }

    /// Replays every done or dead event of a task; returns how many.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the update
    /// fails (as for [`Inbox::replay`]).
    pub async fn replay_task(&self, task_id: &str) -> Result<u64, InboxError> {
        self.inbox
            .replay(super::Replay::Task(task_id.to_owned()))
            .await
    }

    /// Replays the done or dead events `filter` takes, at most `cap` of them (the
    /// newest); returns how many. Preview the number with [`count`](Self::count)
    /// first.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the update
    /// fails.
    pub async fn replay_matching(&self, filter: &EventFilter, cap: u64) -> Result<u64, InboxError> {
        let cap = i64::try_from(cap).unwrap_or(i64::MAX);
        let mut sql = self.sql(
            "UPDATE suno_inbox_events SET state = 'pending', run_after = {now}, attempts = 0, \
             finished_at = NULL, last_error = NULL, lease_token = NULL \
             WHERE id IN (SELECT id FROM suno_inbox_events",
        );
        sql.filter(filter, &["state IN ('done', 'dead')"])
            .push(" ORDER BY id DESC LIMIT ")
            .bind(Arg::Int(cap))
            .push(") AND state IN ('done', 'dead')");
        let replayed = self.execute(&sql).await?;
        if replayed > 0 {
            self.inbox.wake().notify_one();
        }
        tracing::info!(inbox_event = "replayed", replayed, "inbox events replayed");
        Ok(replayed)
    }

    /// Deletes a dead event; returns whether there was one (an event in any other
    /// state is left alone).
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the delete
    /// fails.
    pub async fn discard(&self, id: i64) -> Result<bool, InboxError> {
        let mut sql = self.sql("DELETE FROM suno_inbox_events WHERE state = 'dead' AND id = ");
        sql.bind(Arg::Int(id));
        Ok(self.execute(&sql).await? == 1)
    }

    /// Prunes now what the housekeeper would prune ([`Inbox::prune`]).
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the delete
    /// fails.
    pub async fn prune(&self) -> Result<u64, InboxError> {
        self.inbox.prune().await
    }

    /// Counts of the expected tasks, in one statement; `None` when the database has no
    /// registry table.
    async fn expected_summary(
        &self,
        overdue_after: Duration,
    ) -> Result<Option<ExpectedSummary>, InboxError> {
        let cap = i64::try_from(COUNT_CAP + 1).unwrap_or(i64::MAX);
        let mut sql =
            self.sql("SELECT (SELECT COUNT(*) FROM (SELECT 1 FROM suno_expected_tasks LIMIT ");
        sql.bind(Arg::Int(cap))
            .push(") a), (SELECT COUNT(*) FROM (SELECT 1 FROM suno_expected_tasks WHERE due_at <= {now} LIMIT ")
            .bind(Arg::Int(cap))
            .push(
                ") b), (SELECT COUNT(*) FROM (SELECT 1 FROM suno_expected_tasks \
                 WHERE registered_at <= {now} - ",
            )
            .bind(Arg::Int(super::rows::millis(overdue_after)))
            .push(" LIMIT ")
            .bind(Arg::Int(cap))
            .push(") c)");
        let Ok(values) = self.integers(&sql, 3).await else {
            return Ok(None);
        };
        let capped = |n: Option<i64>| {
            let n = u64::try_from(n.unwrap_or(0)).unwrap_or(0);
            if n > COUNT_CAP {
                Count::AtLeast(n)
            } else {
                Count::Exact(n)
            }
        };
        Ok(Some(ExpectedSummary {
            total: capped(values[0]),
            due: capped(values[1]),
            overdue: capped(values[2]),
        }))
    }

    /// The expected tasks, the soonest due first, after the task `after` (by due time,
    /// then id) when given; at most `limit` (capped at [`MAX_PAGE`]).
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the query
    /// fails (as it does on a database without the `suno_expected_tasks` table).
    pub async fn expected(
        &self,
        after: Option<(i64, &str)>,
        limit: usize,
    ) -> Result<Vec<ExpectedRow>, InboxError> {
        let limit = limit.clamp(1, MAX_PAGE);
        let mut sql = self.sql(
            "SELECT task_id, family, registered_at, due_at, last_poll, last_polled_at \
                 FROM suno_expected_tasks",
        );
        if let Some((due_at, task_id)) = after {
            sql.push(" WHERE due_at > ")
                .bind(Arg::Int(due_at))
                .push(" OR (due_at = ")
                .bind(Arg::Int(due_at))
                .push(" AND task_id > ")
                .bind(Arg::Text(task_id.to_owned()))
                .push(")");
        }
        sql.push(" ORDER BY due_at, task_id LIMIT ")
            .bind(Arg::Int(i64::try_from(limit).unwrap_or(i64::MAX)));
        type Row = (String, String, i64, i64, Option<String>, Option<i64>);
        let rows: Vec<Row> = with_pool!(self.backend(), pool => {
            bound!(sqlx::query_as, sql).fetch_all(pool).await?
        });
        Ok(rows
            .into_iter()
            .map(
                |(task_id, family, registered_at_ms, due_at_ms, answer, polled_at)| ExpectedRow {
                    task_id,
                    family,
                    registered_at_ms,
                    due_at_ms,
                    last_poll: answer.zip(polled_at),
                },
            )
            .collect())
    }

    /// Makes an expected task due now, so the reconciler polls it on its next round;
    /// returns whether the task is registered.
    ///
    /// # Errors
    ///
    /// [`InboxError::unavailable`] when the database cannot be reached or the update
    /// fails (as it does on a database without the `suno_expected_tasks` table).
    pub async fn poll_now(&self, task_id: &str) -> Result<bool, InboxError> {
        let mut sql = self.sql("UPDATE suno_expected_tasks SET due_at = {now} WHERE task_id = ");
        sql.bind(Arg::Text(task_id.to_owned()));
        Ok(self.execute(&sql).await? == 1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(feature = "postgres")]
    #[test]
    fn the_planners_row_estimate_is_read_from_its_first_line() {
        let line = "Seq Scan on suno_inbox_events  (cost=0.00..35.50 rows=2550 width=4)";
        assert_eq!(planned_rows(line), Some(2550));
        assert_eq!(planned_rows("no estimate here"), None);
    }

    #[test]
    fn counts_say_what_kind_they_are() {
        assert_eq!(Count::Exact(3).to_string(), "3");
        assert_eq!(Count::AtLeast(10_001).to_string(), "more than 10000");
        assert!(Count::Estimated(5).to_string().contains("estimated"));
        assert!(!Count::AtLeast(1).is_exact());
    }
}
