//! The delays between the runs of a failing event: exponential backoff with jitter.

use std::time::Duration;

/// Exponential backoff with jitter: the `n`-th retry waits a random time between half
/// and all of `min(first · factorⁿ⁻¹, max)`, times `scale`.
///
/// ```
/// use std::time::Duration;
/// use suno_callback::inbox::RetryPolicy;
///
/// let policy = RetryPolicy::new(Duration::from_secs(2), Duration::from_secs(600));
/// let third = policy.delay(3);
/// assert!(third >= Duration::from_secs(4) && third <= Duration::from_secs(8));
/// // Tests and demonstrations shrink every delay:
/// assert!(policy.scale(0.001).delay(3) <= Duration::from_millis(8));
/// ```
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RetryPolicy {
    first: Duration,
    max: Duration,
    factor: f64,
    scale: f64,
}

impl Default for RetryPolicy {
    /// 1 s doubling up to 1 h, unscaled.
    fn default() -> Self {
        Self::new(Duration::from_secs(1), Duration::from_secs(3600))
    }
}

impl RetryPolicy {
    /// Doubling delays from `first` up to `max`.
    pub fn new(first: Duration, max: Duration) -> Self {
        Self {
            first,
            max: max.max(first),
            factor: 2.0,
            scale: 1.0,
        }
    }

    /// The growth factor between two retries (default 2, at least 1).
    #[must_use]
    pub fn factor(mut self, factor: f64) -> Self {
        self.factor = if factor.is_finite() {
            factor.max(1.0)
        } else {
            2.0
        };
        self
    }

    /// Multiplies every delay (default 1), e.g. `0.001` in tests.
    #[must_use]
    pub fn scale(mut self, scale: f64) -> Self {
        self.scale = if scale.is_finite() {
            scale.max(0.0)
        } else {
            1.0
        };
        self
    }

    /// The delay after the `attempt`-th failed run (from 1), jittered.
    pub fn delay(&self, attempt: u32) -> Duration {
        self.delay_with(attempt, crate::store::random_u64())
    }

    /// The delay with the jitter taken from `random`.
    pub(crate) fn delay_with(&self, attempt: u32, random: u64) -> Duration {
        let exponent = i32::try_from(attempt.saturating_sub(1)).unwrap_or(i32::MAX);
        let ceiling = (self.first.as_secs_f64() * self.factor.powi(exponent))
            .min(self.max.as_secs_f64())
            * self.scale;
        // A uniform fraction in [0, 1) from the top 53 bits.
        let fraction = (random >> 11) as f64 / (1u64 << 53) as f64;
        let seconds = ceiling * (0.5 + 0.5 * fraction);
        Duration::try_from_secs_f64(seconds).unwrap_or(self.max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_double_within_their_jitter_band_up_to_the_maximum() {
        let policy = RetryPolicy::new(Duration::from_secs(1), Duration::from_secs(60));
        for (attempt, ceiling) in [(1, 1.0), (2, 2.0), (3, 4.0), (7, 60.0), (40, 60.0)] {
            let low = policy.delay_with(attempt, 0).as_secs_f64();
            let high = policy.delay_with(attempt, u64::MAX).as_secs_f64();
            assert!((low - ceiling / 2.0).abs() < 1e-9, "{attempt}: {low}");
            assert!(
                high <= ceiling && high > ceiling * 0.99,
                "{attempt}: {high}"
            );
        }
    }

    #[test]
    fn the_jitter_spreads_delays() {
        let policy = RetryPolicy::default();
        let delays: std::collections::HashSet<_> = (0..20).map(|_| policy.delay(5)).collect();
        assert!(delays.len() > 1);
    }

    #[test]
    fn scale_and_factor_apply_and_odd_values_are_tamed() {
        let policy = RetryPolicy::new(Duration::from_secs(10), Duration::from_secs(1000))
            .factor(3.0)
            .scale(0.01);
        assert!((policy.delay_with(3, u64::MAX).as_secs_f64() - 0.9).abs() < 0.01);
        let odd = RetryPolicy::default().factor(f64::NAN).scale(f64::INFINITY);
        assert_eq!(odd, RetryPolicy::default());
        assert_eq!(RetryPolicy::default().scale(-1.0).delay(3), Duration::ZERO);
        assert!(RetryPolicy::default().delay(u32::MAX) <= Duration::from_secs(3600));
    }
}
