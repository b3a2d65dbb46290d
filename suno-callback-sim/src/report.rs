//! What the run prints: one line per attempt, a progress bar for long runs, and the
//! summary at the end.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressStyle};
use suno_callback::testing::FamilyCallback;

use crate::attempt::{Answer, CopyNo, Next, seconds};

/// Runs with at least this many deliveries get a progress bar (on a terminal).
const PROGRESS_FROM: u64 = 10;

/// One attempt, as reported.
#[derive(Debug)]
pub(crate) struct AttemptLine<'a> {
    pub(crate) callback: &'a FamilyCallback,
    pub(crate) copy: CopyNo,
    pub(crate) attempt: usize,
    pub(crate) attempts: usize,
    pub(crate) signing: &'static str,
    pub(crate) answer: &'a Answer,
    pub(crate) elapsed: Duration,
    pub(crate) next: Next,
}

impl fmt::Display for AttemptLine<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let callback = self.callback;
        let stage = callback
            .stage()
            .unwrap_or_else(|| callback.family().as_str().to_owned());
        if callback.code() == 200 {
            write!(f, "{stage:<9}")?;
        } else {
            write!(f, "{:<9}", format!("{stage}/{}", callback.code()))?;
        }
        write!(
            f,
            " task={} copy={}/{} attempt={}/{} signature={} -> ",
            callback.task_id(),
            self.copy.copy,
            self.copy.of,
            self.attempt,
            self.attempts,
            self.signing,
        )?;
        match self.answer {
            Answer::Http { status, label } => write!(
                f,
                "{} {}",
                status.as_u16(),
                label.as_deref().unwrap_or("<no status>")
            )?,
            Answer::Error(error) => write!(f, "error: {error}")?,
        }
        write!(f, " ({})", seconds(self.elapsed))?;
        match self.next {
            Next::Done => Ok(()),
            Next::RetryIn(wait) => write!(f, "; retry in {}", seconds(wait)),
            Next::GiveUp => write!(f, "; given up after {} attempts", self.attempts),
        }
    }
}

/// The counters of a run, shared by every delivery.
#[derive(Debug)]
pub(crate) struct Report {
    /// Attempts sent.
    sent: AtomicU64,
    /// Attempts answered 200, other than `duplicate`.
    accepted: AtomicU64,
    /// Attempts answered 200 `duplicate`.
    duplicates: AtomicU64,
    /// Attempts not answered 200 (other status, no answer, timeout).
    rejected: AtomicU64,
    /// Attempts that were retries.
    retried: AtomicU64,
    /// Deliveries that ran out of retries.
    given_up: AtomicU64,
    /// Attempts by status code and body `status`.
    answers: Mutex<BTreeMap<String, u64>>,
    bar: ProgressBar,
    quiet: bool,
    started: Instant,
}

impl Report {
    /// A report for a run of `deliveries` deliveries.
    pub(crate) fn new(deliveries: u64, quiet: bool) -> Self {
        // A hidden bar draws nothing, and indicatif hides it when stderr is not a
        // terminal.
        let bar = if quiet || deliveries < PROGRESS_FROM {
            ProgressBar::hidden()
        } else {
            let bar = ProgressBar::new(deliveries);
            if let Ok(style) = ProgressStyle::with_template(
                "{bar:40} {pos}/{len} deliveries  {elapsed} elapsed  eta {eta}",
            ) {
                bar.set_style(style);
            }
            bar
        };
        Self {
            sent: AtomicU64::new(0),
            accepted: AtomicU64::new(0),
            duplicates: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            retried: AtomicU64::new(0),
            given_up: AtomicU64::new(0),
            answers: Mutex::new(BTreeMap::new()),
            bar,
            quiet,
            started: Instant::now(),
        }
    }

    /// Prints a line above the progress bar (unless quiet).
    pub(crate) fn say(&self, line: &str) {
        if !self.quiet {
            self.bar.suspend(|| println!("{line}"));
        }
    }

    /// Counts and prints one attempt.
    pub(crate) fn attempt(&self, line: &AttemptLine<'_>) {
        self.sent.fetch_add(1, Ordering::Relaxed);
        if line.attempt > 1 {
            self.retried.fetch_add(1, Ordering::Relaxed);
        }
        let answer_key = match line.answer {
            Answer::Http { status, label } => {
                let label = label.as_deref().unwrap_or("<no status>");
                format!("{} {label}", status.as_u16())
            }
            Answer::Error(_) => "no answer".to_owned(),
        };
        let counter = match line.answer {
            Answer::Http { label, .. } if line.answer.is_success() => {
                if label.as_deref() == Some("duplicate") {
                    &self.duplicates
                } else {
                    &self.accepted
                }
            }
            _ => &self.rejected,
        };
        counter.fetch_add(1, Ordering::Relaxed);
        if let Ok(mut answers) = self.answers.lock() {
            *answers.entry(answer_key).or_default() += 1;
        }
        match line.next {
            Next::GiveUp => {
                self.given_up.fetch_add(1, Ordering::Relaxed);
                self.bar.inc(1);
                // Printed even when quiet: the one thing a quiet run must show.
                self.bar.suspend(|| println!("{line}"));
                return;
            }
            Next::Done => self.bar.inc(1),
            Next::RetryIn(_) => {}
        }
        self.say(&line.to_string());
    }

    /// Clears the progress bar and returns the totals.
    pub(crate) fn finish(&self, tasks: u64, callbacks: u64) -> Summary {
        self.bar.finish_and_clear();
        let answers = self
            .answers
            .lock()
            .map(|answers| answers.clone())
            .unwrap_or_default();
        Summary {
            sent: self.sent.load(Ordering::Relaxed),
            accepted: self.accepted.load(Ordering::Relaxed),
            duplicates: self.duplicates.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
            retried: self.retried.load(Ordering::Relaxed),
            given_up: self.given_up.load(Ordering::Relaxed),
            answers,
            tasks,
            callbacks,
            elapsed: self.started.elapsed(),
        }
    }
}

/// The totals of a run.
#[derive(Debug)]
pub(crate) struct Summary {
    pub(crate) sent: u64,
    pub(crate) accepted: u64,
    pub(crate) duplicates: u64,
    pub(crate) rejected: u64,
    pub(crate) retried: u64,
    pub(crate) given_up: u64,
    answers: BTreeMap<String, u64>,
    tasks: u64,
    callbacks: u64,
    elapsed: Duration,
}

impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "summary: sent {}, accepted {}, duplicates {}, rejected {}, retried {}, given up {}",
            self.sent, self.accepted, self.duplicates, self.rejected, self.retried, self.given_up
        )?;
        let answers: Vec<String> = self
            .answers
            .iter()
            .map(|(answer, count)| format!("{answer} {count}"))
            .collect();
        writeln!(f, "answers: {}", answers.join(", "))?;
        let secs = self.elapsed.as_secs_f64();
        let rate = if secs > 0.0 {
            self.sent as f64 / secs
        } else {
            0.0
        };
        write!(
            f,
            "run: tasks {}, callbacks {}, requests {} in {secs:.3} s ({rate:.0} requests/s)",
            self.tasks, self.callbacks, self.sent
        )
    }
}

#[cfg(test)]
mod tests {
    use http::StatusCode;
    use suno_callback::testing::MusicCallback;

    use super::*;

    fn line<'a>(
        callback: &'a FamilyCallback,
        answer: &'a Answer,
        attempt: usize,
        next: Next,
    ) -> AttemptLine<'a> {
        AttemptLine {
            callback,
            copy: CopyNo { copy: 1, of: 1 },
            attempt,
            attempts: 4,
            signing: "valid",
            answer,
            elapsed: Duration::from_millis(3),
            next,
        }
    }

    fn http(status: u16, label: &str) -> Answer {
        Answer::Http {
            status: StatusCode::from_u16(status).expect("status"),
            label: Some(label.to_owned()),
        }
    }

    #[test]
    fn counters_follow_the_senders_rule() {
        let report = Report::new(3, true);
        let callback = FamilyCallback::from(MusicCallback::complete("t"));
        let failed = http(500, "failed");
        let processed = http(200, "processed");
        let duplicate = http(200, "duplicate");
        let refused = Answer::Error("connection refused".into());
        let wait = Next::RetryIn(Duration::from_millis(600));
        report.attempt(&line(&callback, &failed, 1, wait));
        report.attempt(&line(&callback, &processed, 2, Next::Done));
        report.attempt(&line(&callback, &duplicate, 1, Next::Done));
        report.attempt(&line(&callback, &refused, 4, Next::GiveUp));
        let summary = report.finish(1, 1);
        assert_eq!(
            (
                summary.sent,
                summary.accepted,
                summary.duplicates,
                summary.rejected,
                summary.retried,
                summary.given_up
            ),
            (4, 1, 1, 2, 2, 1)
        );
        let text = summary.to_string();
        assert!(
            text.starts_with(
                "summary: sent 4, accepted 1, duplicates 1, rejected 2, retried 2, given up 1\n"
            ),
            "{text}"
        );
        assert!(
            text.contains("answers: 200 duplicate 1, 200 processed 1, 500 failed 1, no answer 1"),
            "{text}"
        );
    }

    #[test]
    fn an_attempt_line_says_what_was_sent_and_what_came_back() {
        let callback = FamilyCallback::from(MusicCallback::failure("t1", 531));
        let answer = http(500, "failed");
        let text = line(
            &callback,
            &answer,
            1,
            Next::RetryIn(Duration::from_secs(60)),
        )
        .to_string();
        assert_eq!(
            text,
            "error/531 task=t1 copy=1/1 attempt=1/4 signature=valid -> 500 failed (3.0 ms); retry in 60.0 s"
        );
        let refused = Answer::Error("connection refused".into());
        let given_up = line(&callback, &refused, 4, Next::GiveUp).to_string();
        assert!(
            given_up.ends_with("-> error: connection refused (3.0 ms); given up after 4 attempts"),
            "{given_up}"
        );
    }
}
