//! The command line.

use clap::Parser;
use suno_callback::{ApiRoute, Family};

/// A route by its name.
fn parse_route(name: &str) -> Result<ApiRoute, String> {
    ApiRoute::from_name(name)
        .ok_or_else(|| format!("unknown route {name:?}; one of: classic, jobs"))
}

/// A family by its name.
fn parse_family(name: &str) -> Result<Family, String> {
    Family::from_name(name).ok_or_else(|| {
        format!(
            "unknown family {name:?}; one of: {}",
            Family::ALL.map(Family::as_str).join(", ")
        )
    })
}

/// Plays the Suno music API's callback sender against your endpoint: each task's
/// lifecycle (music: `text`, `first`, `complete`, or a failure; or the callbacks of
/// another family, `--family`; or a jobs-route task's final callback, `--route jobs
/// --model NAME`), signed like the sender signs,
/// with its delivery rules (15 s timeout, anything but HTTP 200 is a failure, 3 retries
/// after 1, 5 and 15 minutes).
///
/// Exits with 0 when every callback was delivered, 1 when a delivery was given up, 2
/// on a usage error.
// No `Debug`: it holds the key.
#[derive(Parser)]
#[command(name = "suno-callback-sim", version, max_term_width = 100)]
pub(crate) struct Args {
    /// The callback URL to post to, as given in `callBackUrl` (plain `http://`).
    #[arg(long, env = "SUNO_CALLBACK_URL")]
    pub(crate) url: String,

    /// The webhook HMAC key to sign with (the receiver's key).
    #[arg(
        long,
        env = "SUNO_WEBHOOK_HMAC_KEY",
        hide_env_values = true,
        required_unless_present = "unsigned"
    )]
    pub(crate) key: Option<String>,

    /// Send no signature headers, as the sender does with verification off.
    #[arg(long, conflicts_with_all = ["stale_signature", "wrong_key"])]
    pub(crate) unsigned: bool,

    /// How many tasks to play.
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) tasks: u64,

    /// Start at most this many tasks per second (0: all at once).
    #[arg(long, default_value_t = 0.0)]
    pub(crate) rate: f64,

    /// The task id (with `--tasks N`, a prefix: ID-1, ID-2, ...). Default: a random
    /// 32-digit hex id per task, like the sender's.
    #[arg(long)]
    pub(crate) task_id: Option<String>,

    /// The callback family to play: music (`text`, `first`, `complete`), lyrics
    /// (`complete`), wav, separation, midi, video, cover (one callback each), voice
    /// (`wait_validating`, then `success`).
    #[arg(long, default_value = "music", value_parser = parse_family)]
    pub(crate) family: Family,

    /// The API route the tasks were created through: `classic` (one endpoint per
    /// family, the callbacks above) or `jobs` (`/api/v1/jobs/createTask`: one final
    /// callback per task, `data.model` + `data.state` + `resultJson`).
    #[arg(long, default_value = "classic", value_parser = parse_route)]
    pub(crate) route: ApiRoute,

    /// With `--route jobs`: the model name (`ai-music-api/generate`, any other); its
    /// family replaces `--family`. Default: a model of `--family`.
    #[arg(long, value_name = "NAME")]
    pub(crate) model: Option<String>,

    /// Post to the family's own path: `--url` followed by `/<family>`.
    #[arg(long)]
    pub(crate) family_path: bool,

    /// Play a failure with this code instead of the success (music: instead of `first`
    /// and `complete`; documented: 400, 408, 413, 451, 500, 501, 531).
    #[arg(long, value_name = "CODE")]
    pub(crate) fail_code: Option<i64>,

    /// Do not send the `text` callback.
    #[arg(long)]
    pub(crate) skip_text: bool,

    /// Do not send the `first` callback.
    #[arg(long)]
    pub(crate) skip_first: bool,

    /// Send each callback this many more times, one after another, after it was
    /// first answered: the receiver should answer `duplicate`.
    #[arg(long, default_value_t = 0, value_name = "N")]
    pub(crate) duplicates: u32,

    /// Send N copies of each callback at once: the receiver should run its handler
    /// once.
    #[arg(long, default_value_t = 1, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) storm: u32,

    /// Sign with a timestamp `--stale-by` seconds in the past.
    #[arg(long, conflicts_with = "wrong_key")]
    pub(crate) stale_signature: bool,

    /// How old a stale signature is, in seconds.
    #[arg(long, default_value_t = 3600, value_name = "SECONDS")]
    pub(crate) stale_by: u32,

    /// Sign with a random key instead of `--key`.
    #[arg(long)]
    pub(crate) wrong_key: bool,

    /// Seconds to wait for an answer before the attempt counts as failed.
    #[arg(long, default_value_t = 15.0, value_name = "SECONDS")]
    pub(crate) timeout: f64,

    /// Retries after a failed attempt before giving up on the callback.
    #[arg(long, default_value_t = 3)]
    pub(crate) retries: u32,

    /// Multiplies the retry intervals (60, 300 and 900 s): 0.01 waits 0.6, 3 and 9 s.
    #[arg(long, default_value_t = 1.0, value_name = "FACTOR")]
    pub(crate) retry_scale: f64,

    /// Milliseconds between the callbacks of one task. At least 1000 gives each stage a
    /// timestamp, so a signature, of its own, as the sender's stages, seconds apart,
    /// have: the receiver refuses a signature reused by another stage.
    #[arg(long, default_value_t = 1000, value_name = "MS")]
    pub(crate) stage_gap_ms: u64,

    /// At most this many requests in flight at once.
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u32).range(1..))]
    pub(crate) concurrency: u32,

    /// Print only the summary (and deliveries given up); no progress bar.
    #[arg(short, long)]
    pub(crate) quiet: bool,
}

impl Args {
    /// Checks what clap cannot: numbers in range.
    pub(crate) fn validate(&self) -> Result<(), String> {
        if !(self.rate.is_finite() && self.rate >= 0.0) {
            return Err(format!("--rate must be 0 or more, got {}", self.rate));
        }
        if !(self.timeout.is_finite() && self.timeout > 0.0) {
            return Err(format!("--timeout must be above 0, got {}", self.timeout));
        }
        if !(self.retry_scale.is_finite() && self.retry_scale >= 0.0) {
            return Err(format!(
                "--retry-scale must be 0 or more, got {}",
                self.retry_scale
            ));
        }
        if self.model.is_some() && self.route != ApiRoute::Jobs {
            return Err("--model names a jobs-route model; add --route jobs".to_owned());
        }
        if self.fail_code == Some(200) {
            return Err("--fail-code 200 is a success; leave it out".to_owned());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::Args;

    #[test]
    fn the_command_line_is_consistent() {
        Args::command().debug_assert();
    }
}
