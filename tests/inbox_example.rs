//! The `inbox` example's command line: it acts only on a command it was given, on the
//! database named for it, and refuses anything else before opening a database.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{KEY, RunningExample, example_binary, http_send, signed};
use suno_callback::testing::MusicCallback;

/// A fresh folder for one test, its `mine.db` (`SUNO_INBOX_DATABASE_URL`) and
/// `other.db` (a `DATABASE_URL` meant for another application).
struct Folder(PathBuf);

impl Folder {
    fn new(test: &str) -> Self {
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let path = std::env::temp_dir().join(format!(
            "suno-inbox-example-{test}-{}-{nanos}",
            std::process::id()
        ));
        std::fs::create_dir_all(&path).expect("temporary folder");
        Self(path)
    }

    fn url(&self, name: &str) -> String {
        format!("sqlite://{}", self.0.join(name).display())
    }

    /// The files in the folder, sorted.
    fn files(&self) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(&self.0)
            .expect("read folder")
            .filter_map(Result::ok)
            .map(|entry| entry.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    fn env(&self) -> [(&'static str, String); 2] {
        [
            ("SUNO_INBOX_DATABASE_URL", self.url("mine.db")),
            ("DATABASE_URL", self.url("other.db")),
        ]
    }
}

impl Drop for Folder {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn run(folder: &Folder, args: &[&str]) -> Output {
    std::process::Command::new(example_binary("inbox"))
        .args(args)
        .envs(folder.env())
        .current_dir(Path::new(&folder.0))
        .output()
        .expect("run the example")
}

#[test]
fn help_explains_the_commands_and_opens_nothing() {
    let folder = Folder::new("help");
    for flag in ["--help", "-h", "help"] {
        let output = run(&folder, &[flag]);
        let stdout = String::from_utf8_lossy(&output.stdout);
        assert!(output.status.success(), "{flag}: {output:?}");
        assert!(stdout.contains("usage: inbox serve"), "{flag}: {stdout}");
        assert!(
            stdout.contains("SUNO_INBOX_DATABASE_URL"),
            "{flag}: {stdout}"
        );
        assert!(
            stdout.contains("DATABASE_URL is not read"),
            "{flag}: {stdout}"
        );
        assert!(
            stdout.contains("cargo run -p suno-callback-cli -- replay"),
            "{flag} points at the inbox tool for replays: {stdout}"
        );
    }
    assert_eq!(folder.files(), Vec::<String>::new());
}

#[test]
fn no_command_or_an_unknown_one_is_an_error_that_opens_nothing() {
    let folder = Folder::new("unknown");
    for args in [
        &[][..],
        &["--serve"],
        &["bogus"],
        &["serve", "--now"],
        // replaying is the `suno-inbox` tool's job now
        &["replay"],
        &["replay", "--dead"],
        &["replay", "--id", "x"],
        &["replay", "--dead", "--task", "t"],
    ] {
        let output = run(&folder, args);
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{args:?}: {output:?}");
        assert!(stderr.contains("usage: inbox serve"), "{args:?}: {stderr}");
        assert!(output.stdout.is_empty(), "{args:?}: {output:?}");
    }
    assert_eq!(folder.files(), Vec::<String>::new());
}

#[tokio::test]
async fn serve_uses_its_own_database_and_never_database_url() {
    let folder = Folder::new("serve");
    let env = folder.env();
    let env: Vec<(&str, &str)> = env
        .iter()
        .map(|(name, value)| (*name, value.as_str()))
        .chain([("SUNO_WEBHOOK_HMAC_KEY", KEY)])
        .collect();
    let mut example = RunningExample::start_with_args("inbox", &["serve"], &env, &[]).await;
    http_send(
        example.addr,
        signed(MusicCallback::complete("t-own-db").body()),
    )
    .await
    .expect(200, "accepted");
    loop {
        let line = example.next_line().await;
        if line.starts_with("done music complete task=t-own-db") {
            break;
        }
    }
    let files = folder.files();
    assert!(files.iter().any(|name| name == "mine.db"), "{files:?}");
    assert!(
        !files.iter().any(|name| name.starts_with("other")),
        "{files:?}"
    );
}
