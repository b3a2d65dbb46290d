//! Helpers for the simulator's tests: the receiver's key and path, and the library's
//! quickstart example started as a process.
#![allow(dead_code)] // each test binary uses its own subset

use std::path::{Path, PathBuf};

use tokio::io::{AsyncBufReadExt, BufReader, Lines};
use tokio::process::{Child, ChildStdout};

pub const KEY: &str = "test-webhook-hmac-key";
pub const PATH: &str = "/callbacks/suno";

/// The path of the library's built `quickstart` example (the workspace shares one
/// target directory). `cargo test --workspace` builds examples before running tests;
/// when it was not built, it is built here.
fn example_binary(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>");
    let path = profile_dir.join("examples").join(name);
    if !path.exists() {
        let workspace = Path::new(env!("CARGO_MANIFEST_DIR"))
            .parent()
            .expect("the workspace root");
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", "suno-callback", "--example", name])
            .current_dir(workspace)
            .status()
            .expect("run cargo build");
        assert!(status.success(), "building example {name} failed");
    }
    path
}

/// A running example: its address and the lines it prints.
pub struct RunningExample {
    pub child: Child,
    pub lines: Lines<BufReader<ChildStdout>>,
    pub addr: std::net::SocketAddr,
}

impl RunningExample {
    /// Starts an example on an ephemeral loopback port with the given environment, in
    /// memory (no `REDIS_URL`), and waits for its "listening on http://ADDR/..." line.
    pub async fn start(name: &str, env: &[(&str, &str)], remove: &[&str]) -> Self {
        let mut command = tokio::process::Command::new(example_binary(name));
        command
            .env("BIND_ADDR", "127.0.0.1:0")
            .env_remove("REDIS_URL")
            .env_remove("REDIS_KEY_PREFIX")
            .stdout(std::process::Stdio::piped())
            .kill_on_drop(true);
        for (key, value) in env {
            command.env(key, value);
        }
        for key in remove {
            command.env_remove(key);
        }
        let mut child = command.spawn().expect("start example");
        let stdout = child.stdout.take().expect("stdout");
        let mut lines = BufReader::new(stdout).lines();
        let addr = loop {
            let line = next_line(&mut lines).await;
            if let Some(rest) = line.split("listening on http://").nth(1) {
                let authority = rest.split('/').next().expect("authority");
                break authority.parse().expect("socket address");
            }
        };
        Self { child, lines, addr }
    }

    /// The next line the example prints (fails after 30 s).
    pub async fn next_line(&mut self) -> String {
        next_line(&mut self.lines).await
    }
}

async fn next_line(lines: &mut Lines<BufReader<ChildStdout>>) -> String {
    tokio::time::timeout(std::time::Duration::from_secs(30), lines.next_line())
        .await
        .expect("the example printed a line in time")
        .expect("read stdout")
        .expect("the example is still running")
}
