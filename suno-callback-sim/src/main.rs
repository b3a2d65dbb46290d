//! `suno-callback-sim`: plays the Suno music API's callback sender against a URL, so an
//! endpoint can be tested without the real API.
//!
//! ```text
//! cargo run -p suno-callback-sim -- --url http://127.0.0.1:3000/callbacks/suno --key KEY
//! ```
//!
//! `--help` lists every option. The modules: `args` (the command line), `plan` (what
//! to send and the delivery rules), `attempt` (what one attempt got, shared),
//! `deliver` (one delivery with retries), `report` (lines, progress bar, summary).

mod args;
mod attempt;
mod deliver;
mod plan;
mod report;

use std::process::ExitCode;
use std::sync::Arc;

use clap::Parser;
use tokio::sync::oneshot;
use tokio::task::JoinSet;

use crate::args::Args;
use crate::attempt::{CopyNo, seconds};
use crate::deliver::Sender;
use crate::plan::Plan;
use crate::report::Report;

#[tokio::main]
async fn main() -> ExitCode {
    let args = Args::parse();
    let plan = match Plan::from_args(&args) {
        Ok(plan) => Arc::new(plan),
        Err(error) => {
            eprintln!("suno-callback-sim: {error}");
            return ExitCode::from(2);
        }
    };
    let report = Arc::new(Report::new(plan.total_deliveries(), plan.quiet));
    report.say(&describe(&plan));
    let sender = Arc::new(Sender::new(Arc::clone(&plan), Arc::clone(&report)));

    play(&plan, &sender).await;

    let callbacks = plan.tasks * plan.callbacks("").len() as u64;
    let summary = report.finish(plan.tasks, callbacks);
    println!("{summary}");
    if summary.given_up > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

/// Plays every task, starting them at the plan's rate.
async fn play(plan: &Arc<Plan>, sender: &Arc<Sender>) {
    let started = tokio::time::Instant::now();
    let mut tasks = JoinSet::new();
    for n in 1..=plan.tasks {
        if !plan.task_interval.is_zero() {
            let offset = plan.task_interval.mul_f64((n - 1) as f64);
            tokio::time::sleep_until(started + offset).await;
        }
        tasks.spawn(play_task(Arc::clone(plan), Arc::clone(sender), n));
    }
    while let Some(finished) = tasks.join_next().await {
        if let Err(error) = finished {
            eprintln!("suno-callback-sim: a task stopped: {error}");
        }
    }
}

/// Plays one task: its callbacks in order, each as a storm of concurrent copies and
/// then the duplicates, one after another. The next callback goes out once the
/// previous one's copies have had their first answer; retries carry on meanwhile, as
/// the sender's do.
async fn play_task(plan: Arc<Plan>, sender: Arc<Sender>, n: u64) {
    let task_id = plan.task_id(n);
    let copies = plan.storm + plan.duplicates;
    let mut deliveries = JoinSet::new();
    for (index, callback) in plan.callbacks(&task_id).into_iter().enumerate() {
        if index > 0 && !plan.stage_gap.is_zero() {
            tokio::time::sleep(plan.stage_gap).await;
        }
        let callback = Arc::new(callback);
        let mut send_copy = |copy: u32| {
            let (answered, first_answer) = oneshot::channel();
            let (sender, callback) = (Arc::clone(&sender), Arc::clone(&callback));
            deliveries.spawn(async move {
                let of = copies;
                sender
                    .deliver(&callback, CopyNo { copy, of }, answered)
                    .await
            });
            first_answer
        };
        let storm: Vec<_> = (1..=plan.storm).map(&mut send_copy).collect();
        for first_answer in storm {
            // An error means the delivery ended, which is an answer too.
            let _ = first_answer.await;
        }
        for copy in plan.storm + 1..=copies {
            let _ = send_copy(copy).await;
        }
    }
    // Each delivery's outcome is counted by the report.
    while deliveries.join_next().await.is_some() {}
}

/// The first line of a run: what it is about to do.
fn describe(plan: &Plan) -> String {
    let stages: Vec<String> = plan
        .callbacks("")
        .iter()
        .map(|c| {
            let stage = c.stage().unwrap_or_else(|| c.family().as_str().to_owned());
            match c.code() {
                200 => stage,
                code => format!("{stage}/{code}"),
            }
        })
        .collect();
    let intervals: Vec<String> = plan
        .rules
        .retry_intervals
        .iter()
        .map(|wait| seconds(*wait))
        .collect();
    let retries = if intervals.is_empty() {
        "no retries".to_owned()
    } else {
        format!("retries after {}", intervals.join(", "))
    };
    let route = match &plan.model {
        Some(model) => format!(" (jobs route, model {model})"),
        None => String::new(),
    };
    format!(
        "playing {} task(s) against {}: {}{route}; signature {}; storm {}, duplicates {}; \
         timeout {}, {retries}",
        plan.tasks,
        plan.url,
        stages.join(", "),
        plan.signing.label(),
        plan.storm,
        plan.duplicates,
        seconds(plan.rules.timeout),
    )
}
