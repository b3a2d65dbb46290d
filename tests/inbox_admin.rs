//! The operator's queries (`Inbox::admin`) against real databases: one suite run on
//! SQLite and on PostgreSQL (each test in its own schema), over rows written directly
//! so that every state, family and time is under the test's control.

mod inbox_db;

use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use inbox_db::{Db, Kind, REQUIRE, postgres_answers, postgres_url};
use libtest_mimic::Arguments;
use suno_callback::inbox::{Count, EventFilter, EventState, Inbox, InboxAdmin};

fn now_ms() -> i64 {
    i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_millis(),
    )
    .expect("ms fit")
}

/// One row to write.
struct Row<'a> {
    task: &'a str,
    family: &'a str,
    stage: &'a str,
    outcome: &'a str,
    state: &'a str,
    received_ago_ms: i64,
    error: Option<&'a str>,
    body: &'a str,
}

impl Default for Row<'_> {
    fn default() -> Self {
        Self {
            task: "t",
            family: "music",
            stage: "complete",
            outcome: "success",
            state: "done",
            received_ago_ms: 1_000,
            error: None,
            body: r#"{"code":200,"msg":"ok","data":{"callbackType":"complete","task_id":"t","data":[]}}"#,
        }
    }
}

async fn insert(db: &Db, rows: &[Row<'_>]) {
    let now = now_ms();
    let mut sql = String::new();
    for row in rows {
        let body = row.body.replace('\'', "''");
        let body = match db.kind {
            Kind::Sqlite => format!("CAST('{body}' AS BLOB)"),
            Kind::Postgres => format!("convert_to('{body}', 'UTF8')"),
        };
        let received = now - row.received_ago_ms;
        let finished = if matches!(row.state, "done" | "dead") {
            (received + 10).to_string()
        } else {
            "NULL".to_owned()
        };
        let error = row.error.map_or("NULL".to_owned(), |e| {
            format!("'{}'", e.replace('\'', "''"))
        });
        sql.push_str(&format!(
            "INSERT INTO suno_inbox_events (task_id, family, stage, outcome, body, state, \
             attempts, received_at, run_after, finished_at, last_error) VALUES ('{}', '{}', \
             '{}', '{}', {body}, '{}', 1, {received}, {received}, {finished}, {error});\n",
            row.task, row.family, row.stage, row.outcome, row.state
        ));
    }
    db.exec(&sql).await;
}

async fn admin(db: &Db) -> (Inbox, InboxAdmin) {
    let inbox = db.inbox(Inbox::builder()).await;
    let admin = inbox.admin();
    (inbox, admin)
}

fn state(state: EventState) -> EventFilter {
    EventFilter {
        state: Some(state),
        ..EventFilter::default()
    }
}

/// 2 pending music events received 90 s ago, then 12 dead music events of tasks
/// d0..d11 and 3 done wav, in arrival order (ids follow arrival, as the inbox assigns
/// them).
async fn mixed(db: &Db) {
    let tasks: Vec<String> = (0..12).map(|i| format!("d{i}")).collect();
    let mut rows: Vec<Row<'_>> = ["p0", "p1"]
        .into_iter()
        .map(|task| Row {
            task,
            state: "pending",
            received_ago_ms: 90_000,
            ..Row::default()
        })
        .collect();
    rows.extend(tasks.iter().map(|task| Row {
        task,
        state: "dead",
        error: Some("handler failed: boom"),
        ..Row::default()
    }));
    for task in ["w0", "w1", "w2"] {
        rows.push(Row {
            task,
            family: "wav",
            stage: "",
            ..Row::default()
        });
    }
    insert(db, &rows).await;
}

async fn a_filtered_list_pages_newest_first_without_gaps(db: &Db) {
    let (_inbox, admin) = admin(db).await;
    mixed(db).await;
    let dead = state(EventState::Dead);
    let first = admin.list(&dead, None, 5).await.expect("list");
    assert_eq!(first.events.len(), 5);
    assert!(first.events.iter().all(|e| e.state == EventState::Dead));
    assert!(
        first.events.windows(2).all(|w| w[0].id > w[1].id),
        "newest first"
    );
    assert_eq!(first.events[0].task_id, "d11");
    let mut seen: Vec<i64> = first.events.iter().map(|e| e.id).collect();
    let mut cursor = first.next_before;
    while let Some(before) = cursor {
        let page = admin.list(&dead, Some(before), 5).await.expect("page");
        assert!(page.events.iter().all(|e| e.id < before));
        seen.extend(page.events.iter().map(|e| e.id));
        cursor = page.next_before;
    }
    assert_eq!(seen.len(), 12, "every dead event once: {seen:?}");
    let wav = EventFilter {
        family: Some("wav".into()),
        ..EventFilter::default()
    };
    let wav = admin.list(&wav, None, 50).await.expect("list");
    assert_eq!(wav.events.len(), 3);
    assert_eq!(wav.next_before, None);
    let task = EventFilter {
        task_id: Some("d3".into()),
        ..EventFilter::default()
    };
    assert_eq!(
        admin
            .list(&task, None, 50)
            .await
            .expect("list")
            .events
            .len(),
        1
    );
    let old = EventFilter {
        received_until_ms: Some(now_ms() - 60_000),
        ..EventFilter::default()
    };
    let old = admin.list(&old, None, 50).await.expect("list");
    assert_eq!(
        old.events.len(),
        2,
        "only the pending ones are older than a minute"
    );
    let failures = EventFilter {
        outcome: Some("failure".into()),
        ..EventFilter::default()
    };
    assert!(
        admin
            .list(&failures, None, 50)
            .await
            .expect("list")
            .events
            .is_empty()
    );
}

async fn counts_are_exact_under_the_cap_and_labelled_past_it(db: &Db) {
    let (_inbox, admin) = admin(db).await;
    mixed(db).await;
    let dead = state(EventState::Dead);
    assert_eq!(
        admin.count(&dead, 100).await.expect("count"),
        Count::Exact(12)
    );
    match admin.count(&dead, 5).await.expect("count") {
        Count::AtLeast(n) => assert_eq!(n, 6),
        Count::Estimated(n) => assert!(n > 6, "an estimate above what was counted"),
        Count::Exact(n) => panic!("counted {n} past a cap of 5"),
    }
}

async fn the_overview_counts_states_families_and_the_last_hour(db: &Db) {
    let (_inbox, admin) = admin(db).await;
    mixed(db).await;
    let overview = admin
        .overview(Duration::from_secs(3600))
        .await
        .expect("overview");
    let count = |wanted: EventState| {
        overview
            .states
            .iter()
            .find(|(state, _)| *state == wanted)
            .map(|(_, count)| *count)
    };
    assert_eq!(count(EventState::Dead), Some(Count::Exact(12)));
    assert_eq!(count(EventState::Done), Some(Count::Exact(3)));
    assert_eq!(count(EventState::Pending), Some(Count::Exact(2)));
    assert_eq!(count(EventState::Running), Some(Count::Exact(0)));
    assert_eq!(overview.total, Count::Exact(17));
    assert_eq!(
        overview.families,
        vec![
            ("music".to_owned(), Count::Exact(14)),
            ("wav".to_owned(), Count::Exact(3))
        ]
    );
    let age = overview.oldest_pending_age.expect("pending events");
    assert!(age >= Duration::from_secs(89), "{age:?}");
    assert_eq!(overview.minutes.len(), 60);
    let accepted: u64 = overview.minutes.iter().map(|m| m.accepted).sum();
    let done: u64 = overview.minutes.iter().map(|m| m.done).sum();
    assert_eq!(accepted, 17);
    assert_eq!(done, 3, "dead events are not done");
    let expected = overview.expected.expect("the registry table exists");
    assert_eq!(expected.total, Count::Exact(0));
}

async fn an_event_comes_with_its_body_and_its_tasks_other_events(db: &Db) {
    let (_inbox, admin) = admin(db).await;
    insert(
        db,
        &[
            Row {
                task: "x",
                stage: "text",
                ..Row::default()
            },
            Row {
                task: "x",
                stage: "first",
                ..Row::default()
            },
            Row {
                task: "x",
                stage: "complete",
                state: "dead",
                error: Some(&"e".repeat(300)),
                body: r#"{"title":"<script>alert(1)</script>"}"#,
                ..Row::default()
            },
            Row {
                task: "y",
                ..Row::default()
            },
        ],
    )
    .await;
    let dead = admin
        .list(&state(EventState::Dead), None, 1)
        .await
        .expect("list");
    let listed = &dead.events[0];
    assert_eq!(
        listed.last_error.as_deref().map(str::len),
        Some(suno_callback::inbox::LIST_ERROR_CHARS),
        "a list cuts the error short"
    );
    let event = admin
        .event(listed.id)
        .await
        .expect("event")
        .expect("exists");
    assert_eq!(event.row.last_error.as_deref().map(str::len), Some(300));
    assert_eq!(&event.body[..], br#"{"title":"<script>alert(1)</script>"}"#);
    let stages: Vec<&str> = event.siblings.iter().map(|e| e.stage.as_str()).collect();
    assert_eq!(stages, ["text", "first"]);
    assert!(
        admin
            .event(listed.id + 1000)
            .await
            .expect("event")
            .is_none()
    );
}

async fn a_bulk_replay_takes_only_the_filter_and_stops_at_its_cap(db: &Db) {
    let (_inbox, admin) = admin(db).await;
    mixed(db).await;
    let dead_music = EventFilter {
        state: Some(EventState::Dead),
        family: Some("music".into()),
        ..EventFilter::default()
    };
    assert_eq!(
        admin.replay_matching(&dead_music, 5).await.expect("replay"),
        5
    );
    assert_eq!(
        admin.count(&dead_music, 100).await.expect("count"),
        Count::Exact(7)
    );
    let pending = admin
        .list(&state(EventState::Pending), None, 50)
        .await
        .expect("list");
    assert_eq!(pending.events.len(), 7, "2 pending before, 5 replayed");
    let replayed: Vec<_> = pending
        .events
        .iter()
        .filter(|e| e.task_id.starts_with('d'))
        .collect();
    let tasks: Vec<&str> = replayed.iter().map(|e| e.task_id.as_str()).collect();
    assert_eq!(tasks, ["d11", "d10", "d9", "d8", "d7"], "the newest");
    assert!(replayed.iter().all(|e| e.attempts == 0));
    // Pending events are never taken by a replay, whatever the filter.
    let music = EventFilter {
        family: Some("music".into()),
        ..EventFilter::default()
    };
    assert_eq!(
        admin.replay_matching(&music, 1000).await.expect("replay"),
        7
    );
    assert_eq!(
        admin
            .count(&state(EventState::Done), 100)
            .await
            .expect("count"),
        Count::Exact(3),
        "the done wav events were not in the filter"
    );
}

async fn only_a_dead_event_can_be_discarded(db: &Db) {
    let (_inbox, admin) = admin(db).await;
    mixed(db).await;
    let dead = admin
        .list(&state(EventState::Dead), None, 1)
        .await
        .expect("list");
    let done = admin
        .list(&state(EventState::Done), None, 1)
        .await
        .expect("list");
    assert!(admin.discard(dead.events[0].id).await.expect("discard"));
    assert!(
        !admin
            .discard(dead.events[0].id)
            .await
            .expect("discard again")
    );
    assert!(
        !admin
            .discard(done.events[0].id)
            .await
            .expect("discard done")
    );
    assert!(
        admin
            .event(done.events[0].id)
            .await
            .expect("event")
            .is_some()
    );
    assert_eq!(
        admin
            .count(&state(EventState::Dead), 100)
            .await
            .expect("count"),
        Count::Exact(11)
    );
}

async fn replaying_one_event_and_one_task(db: &Db) {
    let (_inbox, admin) = admin(db).await;
    mixed(db).await;
    let dead = admin
        .list(&state(EventState::Dead), None, 1)
        .await
        .expect("list");
    assert_eq!(
        admin.replay_event(dead.events[0].id).await.expect("replay"),
        1
    );
    assert_eq!(
        admin.replay_event(dead.events[0].id).await.expect("again"),
        0
    );
    assert_eq!(admin.replay_task("w1").await.expect("replay task"), 1);
    assert_eq!(
        admin
            .count(&state(EventState::Pending), 100)
            .await
            .expect("count"),
        Count::Exact(4)
    );
}

async fn expected_tasks_are_listed_due_first_and_polled_now(db: &Db) {
    let (_inbox, admin) = admin(db).await;
    let now = now_ms();
    db.exec(&format!(
        "INSERT INTO suno_expected_tasks (task_id, family, registered_at, due_at) VALUES \
         ('later', 'music', {now}, {later}), \
         ('due', 'wav', {old}, {past}), \
         ('overdue', 'music', {ancient}, {past});",
        later = now + 600_000,
        old = now - 60_000,
        past = now - 1_000,
        ancient = now - 7_200_000,
    ))
    .await;
    let rows = admin.expected(None, 10).await.expect("expected");
    let order: Vec<&str> = rows.iter().map(|r| r.task_id.as_str()).collect();
    assert_eq!(order, ["due", "overdue", "later"]);
    let next = admin
        .expected(Some((rows[0].due_at_ms, &rows[0].task_id)), 10)
        .await
        .expect("next page");
    assert_eq!(next.len(), 2);
    let summary = admin
        .overview(Duration::from_secs(3600))
        .await
        .expect("overview")
        .expected
        .expect("registry");
    assert_eq!(summary.total, Count::Exact(3));
    assert_eq!(summary.due, Count::Exact(2));
    assert_eq!(summary.overdue, Count::Exact(1));
    assert!(admin.poll_now("later").await.expect("poll now"));
    assert!(!admin.poll_now("unknown").await.expect("poll now"));
    let rows = admin.expected(None, 10).await.expect("expected");
    assert!(rows.iter().all(|r| r.due_at_ms <= now_ms()));
}

async fn the_filter_indexes_exist(db: &Db) {
    let (_inbox, _admin) = admin(db).await;
    let sql = match db.kind {
        Kind::Sqlite => {
            "SELECT COUNT(*) FROM sqlite_master WHERE type = 'index' AND name IN \
             ('suno_inbox_events_state_id', 'suno_inbox_events_family_id', \
             'suno_inbox_events_state_family_id', 'suno_inbox_events_received')"
        }
        Kind::Postgres => {
            "SELECT COUNT(*) FROM pg_indexes WHERE schemaname = current_schema() AND \
             indexname IN ('suno_inbox_events_state_id', 'suno_inbox_events_family_id', \
             'suno_inbox_events_state_family_id', 'suno_inbox_events_received')"
        }
    };
    assert_eq!(db.count(sql).await, 4);
}

fn main() -> ExitCode {
    let arguments = Arguments::from_args();
    let url = postgres_url();
    let required = std::env::var(REQUIRE).is_ok_and(|value| value == "1");
    let postgres = postgres_answers(&url);
    if required && !postgres {
        eprintln!("{REQUIRE}=1 but no PostgreSQL server answers at {url}");
        return ExitCode::FAILURE;
    }
    let mut trials = Vec::new();
    for kind in [Kind::Sqlite, Kind::Postgres] {
        let mut suite = suite!(kind;
            a_filtered_list_pages_newest_first_without_gaps,
            counts_are_exact_under_the_cap_and_labelled_past_it,
            the_overview_counts_states_families_and_the_last_hour,
            an_event_comes_with_its_body_and_its_tasks_other_events,
            a_bulk_replay_takes_only_the_filter_and_stops_at_its_cap,
            only_a_dead_event_can_be_discarded,
            replaying_one_event_and_one_task,
            expected_tasks_are_listed_due_first_and_polled_now,
            the_filter_indexes_exist,
        );
        if kind == Kind::Postgres && !postgres {
            suite = suite
                .into_iter()
                .map(|trial| trial.with_ignored_flag(true))
                .collect();
        }
        trials.extend(suite);
    }
    libtest_mimic::run(&arguments, trials).exit_code()
}
