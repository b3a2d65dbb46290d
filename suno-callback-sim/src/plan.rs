//! What to send: the tasks, each task's callbacks, how they are signed, and the
//! sender's delivery rules.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Uri};
use http_body_util::Full;
use suno_callback::testing::{FamilyCallback, MusicCallback, Signer, jobs_model};
use suno_callback::verify::{Clock, SystemClock};
use suno_callback::{ApiRoute, Family};

use crate::args::Args;

/// The documented retry intervals: 1, 5 and 15 minutes.
const RETRY_INTERVALS_SECONDS: [f64; 3] = [60.0, 300.0, 900.0];

/// How each attempt is signed.
pub(crate) enum Signing {
    /// With the receiver's key, timestamped when the attempt is sent.
    Valid(Signer),
    /// With the receiver's key, timestamped this many seconds before the attempt.
    Stale(Signer, i64),
    /// With a key the receiver does not have.
    WrongKey(Signer),
    /// No signature headers.
    Unsigned,
}

impl Signing {
    /// The request for one attempt of `callback`, signed now.
    pub(crate) fn request(&self, callback: &FamilyCallback, url: &str) -> Request<Full<Bytes>> {
        let now = SystemClock.unix_seconds();
        match self {
            Self::Valid(signer) | Self::WrongKey(signer) => {
                callback.signed_request_at(signer, url, now)
            }
            Self::Stale(signer, by) => callback.signed_request_at(signer, url, now - by),
            Self::Unsigned => callback.request(url),
        }
    }

    /// A short name for the attempt lines.
    pub(crate) fn label(&self) -> &'static str {
        match self {
            Self::Valid(_) => "valid",
            Self::Stale(..) => "stale",
            Self::WrongKey(_) => "wrong-key",
            Self::Unsigned => "none",
        }
    }
}

impl fmt::Debug for Signing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The signers redact their keys.
        f.write_str(self.label())
    }
}

/// The sender's delivery rules.
#[derive(Clone, Debug)]
pub(crate) struct Rules {
    /// How long one attempt may take.
    pub(crate) timeout: Duration,
    /// The wait before each retry; its length is the number of retries.
    pub(crate) retry_intervals: Vec<Duration>,
}

impl Rules {
    /// `retries` retries after the documented intervals times `scale` (retries past
    /// the third wait as long as the third).
    fn new(timeout_seconds: f64, retries: u32, scale: f64) -> Self {
        let last = RETRY_INTERVALS_SECONDS.len() - 1;
        let retry_intervals = (0..retries as usize)
            .map(|n| Duration::from_secs_f64(RETRY_INTERVALS_SECONDS[n.min(last)] * scale))
            .collect();
        Self {
            timeout: Duration::from_secs_f64(timeout_seconds),
            retry_intervals,
        }
    }
}

/// Everything the run sends, decided from the command line.
#[derive(Debug)]
pub(crate) struct Plan {
    pub(crate) url: String,
    pub(crate) signing: Signing,
    pub(crate) rules: Rules,
    pub(crate) tasks: u64,
    /// Seconds between task starts (zero: all at once).
    pub(crate) task_interval: Duration,
    pub(crate) stage_gap: Duration,
    /// Copies of each callback sent at once.
    pub(crate) storm: u32,
    /// Copies of each callback sent one after another afterwards.
    pub(crate) duplicates: u32,
    pub(crate) concurrency: usize,
    pub(crate) quiet: bool,
    family: Family,
    /// On the jobs route, the model the tasks were created with.
    pub(crate) model: Option<String>,
    fail_code: Option<i64>,
    skip_text: bool,
    skip_first: bool,
    task_ids: TaskIds,
}

#[derive(Debug)]
enum TaskIds {
    /// `--task-id`: the id itself for one task, else `ID-n`.
    Given(String),
    /// A random 24-digit hex prefix for this run, then the task number in 8 digits.
    Random(String),
}

impl Plan {
    /// The plan for these arguments, or why they cannot be played.
    pub(crate) fn from_args(args: &Args) -> Result<Self, String> {
        args.validate()?;
        let model = match (args.route, &args.model) {
            (ApiRoute::Jobs, Some(model)) => Some(model.clone()),
            (ApiRoute::Jobs, None) => Some(jobs_model(args.family)),
            _ => None,
        };
        let family = model.as_deref().map_or(args.family, |model| {
            Family::from_model(model).unwrap_or(Family::Unknown)
        });
        let mut url = check_url(&args.url)?;
        if args.family_path {
            url = format!("{}/{}", url.trim_end_matches('/'), family);
        }
        let signing = match (&args.key, args.unsigned) {
            (_, true) => Signing::Unsigned,
            (Some(_), false) if args.wrong_key => Signing::WrongKey(Signer::new(random_hex(16)?)),
            (Some(key), false) if args.stale_signature => {
                Signing::Stale(Signer::new(key), i64::from(args.stale_by))
            }
            (Some(key), false) => Signing::Valid(Signer::new(key)),
            (None, false) => return Err("--key (or SUNO_WEBHOOK_HMAC_KEY) is required".into()),
        };
        let task_ids = match &args.task_id {
            Some(id) => TaskIds::Given(id.clone()),
            None => TaskIds::Random(random_hex(12)?),
        };
        let task_interval = if args.rate > 0.0 {
            Duration::from_secs_f64(1.0 / args.rate)
        } else {
            Duration::ZERO
        };
        Ok(Self {
            url,
            signing,
            rules: Rules::new(args.timeout, args.retries, args.retry_scale),
            tasks: args.tasks,
            task_interval,
            stage_gap: Duration::from_millis(args.stage_gap_ms),
            storm: args.storm,
            duplicates: args.duplicates,
            concurrency: args.concurrency as usize,
            quiet: args.quiet,
            family,
            model,
            fail_code: args.fail_code,
            skip_text: args.skip_text,
            skip_first: args.skip_first,
            task_ids,
        })
    }

    /// The id of task `n` (counting from 1).
    pub(crate) fn task_id(&self, n: u64) -> String {
        match &self.task_ids {
            TaskIds::Given(id) if self.tasks == 1 => id.clone(),
            TaskIds::Given(id) => format!("{id}-{n}"),
            TaskIds::Random(prefix) => format!("{prefix}{:08x}", n & 0xffff_ffff),
        }
    }

    /// The callbacks of one task, in the order the sender sends them.
    pub(crate) fn callbacks(&self, task_id: &str) -> Vec<FamilyCallback> {
        if let Some(model) = &self.model {
            // The jobs route sends each task's final callback only.
            return vec![match self.fail_code {
                Some(code) => FamilyCallback::jobs_failure(model.as_str(), task_id).with_code(code),
                None => FamilyCallback::jobs_success(model.as_str(), task_id),
            }];
        }
        match self.family {
            Family::Music => self.music_callbacks(task_id),
            Family::Voice => {
                let mut callbacks = vec![FamilyCallback::voice(task_id, "wait_validating")];
                callbacks.push(self.family_outcome(task_id));
                callbacks
            }
            _ => vec![self.family_outcome(task_id)],
        }
    }

    /// The family's success, or its failure with `--fail-code`.
    fn family_outcome(&self, task_id: &str) -> FamilyCallback {
        match self.fail_code {
            Some(code) => FamilyCallback::failure(self.family, task_id).with_code(code),
            None => FamilyCallback::success(self.family, task_id),
        }
    }

    fn music_callbacks(&self, task_id: &str) -> Vec<FamilyCallback> {
        let mut callbacks = Vec::with_capacity(3);
        if !self.skip_text {
            callbacks.push(MusicCallback::text(task_id));
        }
        match self.fail_code {
            Some(code) => callbacks.push(MusicCallback::failure(task_id, code)),
            None => {
                if !self.skip_first {
                    callbacks.push(MusicCallback::first(task_id));
                }
                callbacks.push(MusicCallback::complete(task_id));
            }
        }
        callbacks.into_iter().map(FamilyCallback::from).collect()
    }

    /// Deliveries in the whole run: every copy of every callback of every task.
    pub(crate) fn total_deliveries(&self) -> u64 {
        let per_callback = u64::from(self.storm) + u64::from(self.duplicates);
        let per_task = self.callbacks("").len() as u64 * per_callback;
        self.tasks.saturating_mul(per_task)
    }
}

/// The URL, if it is one this simulator can post to.
fn check_url(url: &str) -> Result<String, String> {
    let uri: Uri = url
        .parse()
        .map_err(|e| format!("--url {url:?} is not a URL: {e}"))?;
    match uri.scheme_str() {
        Some("http") if uri.authority().is_some() => Ok(url.to_owned()),
        Some("https") => Err(format!(
            "--url {url:?}: this simulator speaks plain HTTP only; point it at the \
             server's own http:// address (or a local port of the TLS proxy in front of it)"
        )),
        _ => Err(format!(
            "--url {url:?} must be an absolute http:// URL, like http://127.0.0.1:3000/callbacks/suno"
        )),
    }
}

/// `bytes` random bytes as hex.
fn random_hex(bytes: usize) -> Result<String, String> {
    let mut buffer = vec![0u8; bytes];
    getrandom::fill(&mut buffer).map_err(|e| format!("no randomness: {e}"))?;
    Ok(buffer.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::*;

    fn plan(args: &[&str]) -> Result<Plan, String> {
        let mut argv = vec!["suno-callback-sim", "--url", "http://127.0.0.1:3000/cb"];
        argv.extend_from_slice(args);
        Plan::from_args(&Args::try_parse_from(argv).map_err(|e| e.to_string())?)
    }

    #[test]
    fn a_lifecycle_is_text_first_complete_or_text_and_a_failure() {
        let stages = |plan: &Plan| -> Vec<String> {
            plan.callbacks("t")
                .iter()
                .map(|c| format!("{}/{}", c.stage().unwrap_or_default(), c.code()))
                .collect()
        };
        let full = plan(&["--key", "k"]).expect("plan");
        assert_eq!(stages(&full), ["text/200", "first/200", "complete/200"]);
        let failed = plan(&["--key", "k", "--fail-code", "531"]).expect("plan");
        assert_eq!(stages(&failed), ["text/200", "error/531"]);
        let short = plan(&["--key", "k", "--skip-text", "--skip-first"]).expect("plan");
        assert_eq!(stages(&short), ["complete/200"]);
    }

    #[test]
    fn every_family_plays_its_callbacks_on_its_path_if_asked() {
        let wav = plan(&["--key", "k", "--family", "wav", "--family-path"]).expect("plan");
        assert_eq!(wav.url, "http://127.0.0.1:3000/cb/wav");
        let [success] = &wav.callbacks("t")[..] else {
            panic!("one callback")
        };
        assert_eq!((success.family(), success.code()), (Family::Wav, 200));
        let voice = plan(&["--key", "k", "--family", "voice", "--fail-code", "400"]).expect("plan");
        let stages: Vec<_> = voice
            .callbacks("t")
            .iter()
            .map(|c| (c.stage(), c.code()))
            .collect();
        assert_eq!(
            stages,
            [
                (Some("wait_validating".into()), 200),
                (Some("fail".into()), 400)
            ]
        );
        for family in Family::ALL {
            let played = plan(&["--key", "k", "--family", family.as_str()]).expect("plan");
            assert!(
                played.callbacks("t").iter().all(|c| c.family() == family),
                "{family}"
            );
        }
        assert!(plan(&["--key", "k", "--family", "karaoke"]).is_err());
    }

    #[test]
    fn the_jobs_route_plays_one_final_callback_of_the_models_family() {
        let jobs = plan(&[
            "--key",
            "k",
            "--route",
            "jobs",
            "--model",
            "ai-music-api/generate",
        ])
        .expect("plan");
        let [success] = &jobs.callbacks("t")[..] else {
            panic!("one callback")
        };
        assert_eq!(
            (success.route(), success.family(), success.code()),
            (ApiRoute::Jobs, Family::Music, 200)
        );
        let event = suno_callback::CallbackEvent::from_json(success.body()).expect("parses");
        assert_eq!(event.api_route(), ApiRoute::Jobs);
        assert_eq!(event.tracks().len(), 2);

        let failed = plan(&[
            "--key",
            "k",
            "--route",
            "jobs",
            "--model",
            "ai-music-api/convert-to-wav-format",
            "--fail-code",
            "501",
            "--family-path",
        ])
        .expect("plan");
        assert_eq!(failed.url, "http://127.0.0.1:3000/cb/wav");
        let [failure] = &failed.callbacks("t")[..] else {
            panic!("one callback")
        };
        let event = suno_callback::CallbackEvent::from_json(failure.body()).expect("parses");
        assert_eq!((event.family(), event.is_failure()), (Family::Wav, true));

        // Without a model, one of `--family`; another provider's model is unknown.
        for family in Family::ALL {
            let played = plan(&["--key", "k", "--route", "jobs", "--family", family.as_str()])
                .expect("plan");
            let callbacks = played.callbacks("t");
            assert_eq!(callbacks.len(), 1, "{family}");
            assert_eq!(callbacks[0].family(), family);
            assert_eq!(callbacks[0].route(), ApiRoute::Jobs);
        }
        let other = plan(&[
            "--key",
            "k",
            "--route",
            "jobs",
            "--model",
            "sora-2-text-to-video",
        ])
        .expect("plan");
        assert_eq!(other.callbacks("t")[0].family(), Family::Unknown);
        assert!(plan(&["--key", "k", "--model", "ai-music-api/generate"]).is_err());
        assert!(plan(&["--key", "k", "--route", "graphql"]).is_err());
    }

    #[test]
    fn retry_intervals_are_the_documented_ones_scaled() {
        let rules = Rules::new(15.0, 4, 0.01);
        let millis: Vec<u128> = rules
            .retry_intervals
            .iter()
            .map(Duration::as_millis)
            .collect();
        assert_eq!(millis, [600, 3000, 9000, 9000]);
        assert_eq!(rules.timeout, Duration::from_secs(15));
        assert!(Rules::new(15.0, 0, 1.0).retry_intervals.is_empty());
    }

    #[test]
    fn task_ids_are_unique_and_sender_shaped() {
        let random = plan(&["--key", "k", "--tasks", "3"]).expect("plan");
        let (a, b) = (random.task_id(1), random.task_id(2));
        assert_eq!(a.len(), 32);
        assert_ne!(a, b);
        let given = plan(&["--key", "k", "--task-id", "mine", "--tasks", "2"]).expect("plan");
        assert_eq!(given.task_id(2), "mine-2");
        let one = plan(&["--key", "k", "--task-id", "mine"]).expect("plan");
        assert_eq!(one.task_id(1), "mine");
    }

    #[test]
    fn bad_arguments_are_refused_with_a_reason() {
        if std::env::var_os("SUNO_WEBHOOK_HMAC_KEY").is_none() {
            assert!(plan(&[]).is_err(), "a key is required");
        }
        assert!(plan(&["--unsigned"]).is_ok());
        for bad in [
            &["--key", "k", "--rate", "-1"][..],
            &["--key", "k", "--timeout", "0"],
            &["--key", "k", "--retry-scale", "NaN"],
            &["--key", "k", "--fail-code", "200"],
            &["--key", "k", "--storm", "0"],
            &["--key", "k", "--stale-signature", "--wrong-key"],
        ] {
            assert!(plan(bad).is_err(), "{bad:?}");
        }
        let https = Args::try_parse_from(["sim", "--url", "https://example.net/cb", "--key", "k"])
            .expect("parses");
        let error = Plan::from_args(&https).expect_err("https refused");
        assert!(error.contains("plain HTTP"), "{error}");
    }

    #[test]
    fn the_signing_mode_follows_the_flags() {
        let label = |args: &[&str]| plan(args).expect("plan").signing.label();
        assert_eq!(label(&["--key", "k"]), "valid");
        assert_eq!(label(&["--key", "k", "--stale-signature"]), "stale");
        assert_eq!(label(&["--key", "k", "--wrong-key"]), "wrong-key");
        assert_eq!(label(&["--unsigned"]), "none");
        let debug = format!("{:?}", plan(&["--key", "secret-key"]).expect("plan"));
        assert!(!debug.contains("secret-key"), "{debug}");
    }

    #[test]
    fn every_copy_counts_toward_the_total() {
        let plan = plan(&[
            "--key",
            "k",
            "--tasks",
            "10",
            "--storm",
            "4",
            "--duplicates",
            "2",
        ])
        .expect("plan");
        assert_eq!(plan.total_deliveries(), 10 * 3 * 6);
    }
}
