//! `suno-inbox`: the operator's reads and actions on a suno-callback inbox, from a
//! terminal — the same as the console's pages and buttons.
//!
//! ```text
//! DATABASE_URL=sqlite://suno-inbox.db suno-inbox stats
//! suno-inbox list --state dead --family music --since 2h
//! suno-inbox show 42
//! suno-inbox replay 42 | --task 2fac7b1e | --dead [--yes]
//! suno-inbox discard 42
//! suno-inbox prune
//! ```
//!
//! Human tables by default, `--json` for scripts. It never changes the schema (the
//! application's inbox runs the migrations).

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use serde_json::{Value, json};
use suno_callback::inbox::{
    COUNT_CAP, Count, DEFAULT_REPLAY_CAP, EventFilter, EventRow, EventState, Inbox, InboxAdmin,
};

/// The operator's reads and actions on a suno-callback inbox.
#[derive(Debug, Parser)]
#[command(name = "suno-inbox", version)]
struct Cli {
    /// The inbox's database: `sqlite://path.db` or `postgres://…`.
    #[arg(long, env = "DATABASE_URL", hide_env_values = true)]
    database_url: String,
    /// Print JSON instead of tables.
    #[arg(long, global = true)]
    json: bool,
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Events by state and family, the oldest pending age, the last hour.
    Stats,
    /// Events, newest first, filtered.
    List(ListArgs),
    /// One event: its columns, body and the task's other events.
    Show {
        /// The event's id.
        id: i64,
    },
    /// Runs done or dead events again.
    Replay(ReplayArgs),
    /// Deletes a dead event.
    Discard {
        /// The event's id.
        id: i64,
    },
    /// Deletes done and dead events older than the inbox's default prune age (14 days).
    Prune,
}

#[derive(Debug, Args)]
struct Filters {
    /// pending, running, done or dead.
    #[arg(long)]
    state: Option<String>,
    /// music, lyrics, wav, separation, midi, video, cover, voice or unknown.
    #[arg(long)]
    family: Option<String>,
    /// success or failure.
    #[arg(long)]
    outcome: Option<String>,
    /// One task's events.
    #[arg(long)]
    task: Option<String>,
    /// Received less than this long ago (`90s`, `30m`, `2h`, `3d`).
    #[arg(long, value_parser = parse_duration)]
    since: Option<Duration>,
    /// Received more than this long ago.
    #[arg(long, value_parser = parse_duration)]
    until: Option<Duration>,
}

#[derive(Debug, Args)]
struct ListArgs {
    #[command(flatten)]
    filters: Filters,
    /// Events older than this id (the next page's cursor, printed under the table).
    #[arg(long)]
    before: Option<i64>,
    /// How many events (at most 500).
    #[arg(long, default_value_t = 50)]
    limit: usize,
}

#[derive(Debug, Args)]
#[command(group(clap::ArgGroup::new("which").required(true).args(["id", "task", "dead"])))]
struct ReplayArgs {
    /// One event, by id.
    id: Option<i64>,
    /// Every done or dead event of this task.
    #[arg(long)]
    task: Option<String>,
    /// Every dead event (newest first, at most --cap); needs --yes after a preview.
    #[arg(long)]
    dead: bool,
    /// The most events one `--dead` replay changes.
    #[arg(long, default_value_t = DEFAULT_REPLAY_CAP)]
    cap: u64,
    /// Replay without the preview.
    #[arg(long)]
    yes: bool,
}

/// `90s`, `30m`, `2h`, `3d` (or plain seconds).
fn parse_duration(text: &str) -> Result<Duration, String> {
    let text = text.trim();
    let (number, unit) = text
        .find(|c: char| !c.is_ascii_digit())
        .map_or((text, "s"), |at| text.split_at(at));
    let number: u64 = number
        .parse()
        .map_err(|_| format!("not a duration: {text:?} (try 90s, 30m, 2h, 3d)"))?;
    let seconds = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(format!("unknown unit in {text:?} (s, m, h or d)")),
    };
    Ok(Duration::from_secs(number.saturating_mul(seconds)))
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |since| {
            i64::try_from(since.as_millis()).unwrap_or(i64::MAX)
        })
}

fn ago(duration: Duration) -> i64 {
    now_ms().saturating_sub(i64::try_from(duration.as_millis()).unwrap_or(i64::MAX))
}

impl Filters {
    fn filter(&self) -> Result<EventFilter, String> {
        let state = match &self.state {
            Some(state) => Some(EventState::from_column(state).ok_or_else(|| {
                format!("unknown state {state:?} (pending, running, done, dead)")
            })?),
            None => None,
        };
        Ok(EventFilter {
            state,
            family: self.family.clone(),
            outcome: self.outcome.clone(),
            task_id: self.task.clone(),
            received_from_ms: self.since.map(ago),
            received_until_ms: self.until.map(ago),
        })
    }
}

/// Unix milliseconds as `2026-12-04 01:50:07` (UTC).
fn utc(ms: i64) -> String {
    let seconds = ms.div_euclid(1000);
    let days = seconds.div_euclid(86_400);
    let rest = seconds.rem_euclid(86_400);
    // Howard Hinnant's civil_from_days.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02}",
        rest / 3600,
        rest % 3600 / 60,
        rest % 60
    )
}

fn count_text(count: Count) -> String {
    match count {
        Count::Exact(n) => n.to_string(),
        Count::AtLeast(n) => format!(">{}", n.saturating_sub(1)),
        Count::Estimated(n) => format!("~{n} (estimated)"),
    }
}

fn count_json(count: Count) -> Value {
    let kind = match count {
        Count::Exact(_) => "exact",
        Count::AtLeast(_) => "at_least",
        Count::Estimated(_) => "estimated",
    };
    json!({"value": count.value(), "kind": kind})
}

/// `text` on one line, cut to `chars` characters; control characters (an attacker's
/// terminal escapes) shown as `?`.
fn cell(text: &str, chars: usize) -> String {
    let clean: String = text
        .chars()
        .map(|c| if c.is_control() { '?' } else { c })
        .collect();
    match clean.char_indices().nth(chars) {
        Some((end, _)) => format!("{}…", &clean[..end]),
        None => clean,
    }
}

/// Columns padded to their widest cell.
fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in rows {
        for (width, value) in widths.iter_mut().zip(row) {
            *width = (*width).max(value.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        cells
            .iter()
            .zip(&widths)
            .map(|(value, width)| format!("{value:<width$}"))
            .collect::<Vec<_>>()
            .join("  ")
            .trim_end()
            .to_owned()
    };
    let mut out = line(header.to_vec());
    out.push('\n');
    for row in rows {
        out.push_str(&line(row.iter().map(String::as_str).collect()));
        out.push('\n');
    }
    out
}

fn row_json(event: &EventRow) -> Value {
    json!({
        "id": event.id,
        "task_id": event.task_id,
        "family": event.family,
        "stage": event.stage,
        "outcome": event.outcome,
        "state": event.state.as_str(),
        "attempts": event.attempts,
        "received_at_ms": event.received_at_ms,
        "finished_at_ms": event.finished_at_ms,
        "last_error": event.last_error,
    })
}

fn rows_table(events: &[EventRow]) -> String {
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                e.id.to_string(),
                cell(&e.task_id, 36),
                cell(&e.family, 12),
                cell(&e.stage, 12),
                cell(&e.outcome, 8),
                e.state.as_str().to_owned(),
                e.attempts.to_string(),
                utc(e.received_at_ms),
                cell(e.last_error.as_deref().unwrap_or(""), 60),
            ]
        })
        .collect();
    table(
        &[
            "ID",
            "TASK",
            "FAMILY",
            "STAGE",
            "OUTCOME",
            "STATE",
            "ATTEMPTS",
            "RECEIVED (UTC)",
            "LAST ERROR",
        ],
        &rows,
    )
}

async fn run(cli: Cli) -> Result<(), String> {
    let inbox = Inbox::builder()
        .migrate_on_start(false)
        .max_connections(2)
        .connect(&cli.database_url)
        .await
        .map_err(|error| format!("cannot open the inbox: {error}"))?;
    let admin = inbox.admin();
    let result = command(&admin, cli.command, cli.json).await;
    inbox.close().await;
    result
}

async fn command(admin: &InboxAdmin, command: Command, json: bool) -> Result<(), String> {
    let failed =
        |error: suno_callback::inbox::InboxError| format!("the inbox's database failed: {error}");
    match command {
        Command::Stats => {
            let overview = admin
                .overview(Duration::from_secs(14 * 86_400))
                .await
                .map_err(failed)?;
            let accepted: u64 = overview.minutes.iter().map(|m| m.accepted).sum();
            let done: u64 = overview.minutes.iter().map(|m| m.done).sum();
            if json {
                let states: serde_json::Map<String, Value> = overview
                    .states
                    .iter()
                    .map(|(state, count)| (state.as_str().to_owned(), count_json(*count)))
                    .collect();
                let families: serde_json::Map<String, Value> = overview
                    .families
                    .iter()
                    .map(|(family, count)| (family.clone(), count_json(*count)))
                    .collect();
                let expected = overview.expected.map(|e| {
                    json!({"total": count_json(e.total), "due": count_json(e.due), "overdue": count_json(e.overdue)})
                });
                let output = json!({
                    "states": states,
                    "families": families,
                    "total": count_json(overview.total),
                    "oldest_pending_age_seconds": overview.oldest_pending_age.map(|age| age.as_secs_f64()),
                    "last_hour": {"accepted": accepted, "done": done},
                    "expected_tasks": expected,
                });
                println!("{output}");
            } else {
                let mut rows: Vec<Vec<String>> = overview
                    .states
                    .iter()
                    .map(|(state, count)| vec![state.as_str().to_owned(), count_text(*count)])
                    .collect();
                rows.push(vec!["all".to_owned(), count_text(overview.total)]);
                print!("{}", table(&["STATE", "EVENTS"], &rows));
                println!();
                let rows: Vec<Vec<String>> = overview
                    .families
                    .iter()
                    .map(|(family, count)| vec![family.clone(), count_text(*count)])
                    .collect();
                print!("{}", table(&["FAMILY", "EVENTS"], &rows));
                println!();
                match overview.oldest_pending_age {
                    Some(age) => println!("oldest pending: {} s", age.as_secs()),
                    None => println!("oldest pending: none"),
                }
                println!("last hour: {accepted} accepted, {done} done");
                if let Some(expected) = overview.expected {
                    println!(
                        "expected tasks: {} registered, {} due, {} overdue",
                        count_text(expected.total),
                        count_text(expected.due),
                        count_text(expected.overdue)
                    );
                }
            }
        }
        Command::List(args) => {
            let filter = args.filters.filter()?;
            let page = admin
                .list(&filter, args.before, args.limit)
                .await
                .map_err(failed)?;
            if json {
                let events: Vec<Value> = page.events.iter().map(row_json).collect();
                println!(
                    "{}",
                    json!({"events": events, "next_before": page.next_before})
                );
            } else {
                print!("{}", rows_table(&page.events));
                let matching = admin.count(&filter, COUNT_CAP).await.map_err(failed)?;
                println!("{} matching", count_text(matching));
                if let Some(next) = page.next_before {
                    println!("older: --before {next}");
                }
            }
        }
        Command::Show { id } => {
            let Some(detail) = admin.event(id).await.map_err(failed)? else {
                return Err(format!("no event {id}"));
            };
            let body: Value = serde_json::from_slice(&detail.body).unwrap_or_else(|_| {
                Value::String(String::from_utf8_lossy(&detail.body).into_owned())
            });
            if json {
                let mut output = row_json(&detail.row);
                output["run_after_ms"] = json!(detail.run_after_ms);
                output["body"] = body;
                output["task_events"] = detail.siblings.iter().map(row_json).collect();
                println!("{output}");
            } else {
                let row = &detail.row;
                println!("event     {}", row.id);
                println!("task      {}", cell(&row.task_id, 200));
                println!(
                    "key       {} / {} / {}",
                    cell(&row.family, 40),
                    cell(&row.stage, 40),
                    cell(&row.outcome, 20)
                );
                println!("state     {}", row.state);
                println!("attempts  {}", row.attempts);
                println!("received  {} UTC", utc(row.received_at_ms));
                if let Some(finished) = row.finished_at_ms {
                    println!("finished  {} UTC", utc(finished));
                }
                if let Some(error) = &row.last_error {
                    println!("error     {}", cell(error, 1000));
                }
                println!("body:");
                let pretty = serde_json::to_string_pretty(&body).unwrap_or_default();
                for line in pretty.lines() {
                    println!("  {}", cell(line, 2000));
                }
                if !detail.siblings.is_empty() {
                    println!("the task's other events:");
                    print!("{}", rows_table(&detail.siblings));
                }
            }
        }
        Command::Replay(args) => {
            let replayed = if let Some(id) = args.id {
                admin.replay_event(id).await.map_err(failed)?
            } else if let Some(task) = &args.task {
                admin.replay_task(task).await.map_err(failed)?
            } else {
                let dead = EventFilter {
                    state: Some(EventState::Dead),
                    ..EventFilter::default()
                };
                if !args.yes {
                    let count = admin.count(&dead, COUNT_CAP).await.map_err(failed)?;
                    let shown = count.value().min(args.cap);
                    if json {
                        println!(
                            "{}",
                            json!({"preview": true, "matching": count_json(count), "would_replay": shown})
                        );
                    } else {
                        println!(
                            "{} dead events; replay --dead --yes replays {shown} of them (the newest, --cap {})",
                            count_text(count),
                            args.cap
                        );
                    }
                    return Ok(());
                }
                admin
                    .replay_matching(&dead, args.cap)
                    .await
                    .map_err(failed)?
            };
            if json {
                println!("{}", json!({"replayed": replayed}));
            } else {
                println!("{replayed} event(s) replayed");
            }
        }
        Command::Discard { id } => {
            let discarded = admin.discard(id).await.map_err(failed)?;
            if json {
                println!("{}", json!({"discarded": discarded}));
            } else if discarded {
                println!("event {id} discarded");
            } else {
                return Err(format!("event {id} is not a dead event; nothing discarded"));
            }
        }
        Command::Prune => {
            let pruned = admin.prune().await.map_err(failed)?;
            if json {
                println!("{}", json!({"pruned": pruned}));
            } else {
                println!("{pruned} finished event(s) pruned");
            }
        }
    }
    Ok(())
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("suno-inbox: {error}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_their_unit() {
        assert_eq!(parse_duration("90"), Ok(Duration::from_secs(90)));
        assert_eq!(parse_duration("30m"), Ok(Duration::from_secs(1800)));
        assert_eq!(parse_duration("3d"), Ok(Duration::from_secs(259_200)));
        assert!(parse_duration("2w").is_err());
        assert!(parse_duration("soon").is_err());
    }

    #[test]
    fn cells_hide_terminal_escapes() {
        assert_eq!(cell("a\u{1b}[31mb", 10), "a?[31mb");
        assert_eq!(cell("abcdef", 3), "abc…");
        assert_eq!(utc(0), "1970-01-01 00:00:00");
    }

    #[test]
    fn the_arguments_parse() {
        Cli::command_for_tests().debug_assert();
    }

    impl Cli {
        fn command_for_tests() -> clap::Command {
            <Self as clap::CommandFactory>::command()
        }
    }
}
