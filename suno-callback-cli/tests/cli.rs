//! `suno-inbox` run as a process against a SQLite inbox written by the test.

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;
use suno_callback::inbox::Inbox;
use suno_callback::inbox::sqlx::{self, Connection as _};

struct Db {
    dir: std::path::PathBuf,
    url: String,
}

impl Drop for Db {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

async fn db() -> Db {
    let dir = std::env::temp_dir().join(format!(
        "suno_inbox_cli_{}",
        suno_callback::store::ClaimToken::new_unique()
    ));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let url = format!("sqlite://{}", dir.join("inbox.db").display());
    let inbox = Inbox::builder().connect(&url).await.expect("inbox");
    inbox.close().await;
    let mut connection = sqlx::SqliteConnection::connect(&url)
        .await
        .expect("connect");
    let now = i64::try_from(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock")
            .as_millis(),
    )
    .expect("ms");
    for (task, state, error) in [
        ("task-a", "dead", Some("handler failed: \u{1b}[31mred")),
        ("task-b", "dead", Some("handler failed")),
        ("task-c", "done", None),
        ("task-a", "pending", None),
    ] {
        let stage = if state == "pending" {
            "first"
        } else {
            "complete"
        };
        let body = format!(
            r#"{{"code":200,"msg":"ok","data":{{"callbackType":"{stage}","task_id":"{task}","data":[]}}}}"#
        );
        sqlx::query(
            "INSERT INTO suno_inbox_events (task_id, family, stage, outcome, body, state, \
             attempts, received_at, run_after, finished_at, last_error) \
             VALUES (?1, 'music', ?2, 'success', ?3, ?4, 2, ?5, ?5, ?5, ?6)",
        )
        .bind(task)
        .bind(stage)
        .bind(body.into_bytes())
        .bind(state)
        .bind(now - 1000)
        .bind(error)
        .execute(&mut connection)
        .await
        .expect("insert");
    }
    Db { dir, url }
}

fn run(db: &Db, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_suno-inbox"))
        .args(args)
        .env("DATABASE_URL", &db.url)
        .output()
        .expect("run suno-inbox");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

fn json(db: &Db, args: &[&str]) -> Value {
    let mut args = args.to_vec();
    args.push("--json");
    let (ok, out, err) = run(db, &args);
    assert!(ok, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|error| panic!("{error}: {out}"))
}

#[tokio::test]
async fn stats_and_list_read_the_inbox() {
    let db = db().await;
    let stats = json(&db, &["stats"]);
    assert_eq!(stats["states"]["dead"]["value"], 2);
    assert_eq!(stats["states"]["pending"]["value"], 1);
    assert_eq!(stats["states"]["dead"]["kind"], "exact");
    assert_eq!(stats["families"]["music"]["value"], 4);
    let (ok, table, _) = run(&db, &["stats"]);
    assert!(ok);
    assert!(
        table.contains("dead") && table.contains("oldest pending"),
        "{table}"
    );

    let dead = json(&db, &["list", "--state", "dead"]);
    let events = dead["events"].as_array().expect("events");
    assert_eq!(events.len(), 2);
    assert_eq!(events[0]["task_id"], "task-b", "newest first");
    let page = json(&db, &["list", "--limit", "1"]);
    let next = page["next_before"].as_i64().expect("a next page");
    let older = json(
        &db,
        &["list", "--limit", "1", "--before", &next.to_string()],
    );
    assert!(older["events"][0]["id"].as_i64().expect("id") < next);
    let (ok, table, _) = run(&db, &["list", "--task", "task-a"]);
    assert!(ok);
    assert!(table.contains("2 matching"), "{table}");
    assert!(
        !table.contains('\u{1b}'),
        "no terminal escape from the database"
    );
    let (ok, _, err) = run(&db, &["list", "--state", "sleeping"]);
    assert!(!ok && err.contains("unknown state"), "{err}");
}

#[tokio::test]
async fn show_replay_discard_and_prune_act_on_it() {
    let db = db().await;
    let dead = json(&db, &["list", "--state", "dead"]);
    let first = dead["events"][1]["id"].as_i64().expect("id");
    let second = dead["events"][0]["id"].as_i64().expect("id");
    let shown = json(&db, &["show", &first.to_string()]);
    assert_eq!(shown["body"]["data"]["task_id"], "task-a");
    assert_eq!(shown["task_events"].as_array().expect("siblings").len(), 1);
    let (ok, text, _) = run(&db, &["show", &first.to_string()]);
    assert!(
        ok && text.contains("\"callbackType\": \"complete\""),
        "{text}"
    );

    let preview = json(&db, &["replay", "--dead"]);
    assert_eq!(preview["preview"], true);
    assert_eq!(preview["would_replay"], 2);
    assert_eq!(
        json(&db, &["stats"])["states"]["dead"]["value"],
        2,
        "a preview changes nothing"
    );
    assert_eq!(json(&db, &["replay", &first.to_string()])["replayed"], 1);
    assert_eq!(json(&db, &["replay", "--task", "task-c"])["replayed"], 1);
    assert_eq!(
        json(&db, &["discard", &second.to_string()])["discarded"],
        true
    );
    let (ok, _, err) = run(&db, &["discard", &second.to_string()]);
    assert!(!ok && err.contains("not a dead event"), "{err}");
    assert_eq!(json(&db, &["replay", "--dead", "--yes"])["replayed"], 0);
    assert_eq!(json(&db, &["prune"])["pruned"], 0, "nothing is 14 days old");
    let stats = json(&db, &["stats"]);
    assert_eq!(stats["states"]["pending"]["value"], 3);
    assert_eq!(stats["states"]["dead"]["value"], 0);
}
