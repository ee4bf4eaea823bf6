//! Exponential backoff between reconnect attempts.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::time::Duration;

/// How long to wait before reconnect attempt `n`: `initial × factor^(n-1)`, capped at `max`,
/// with up to `jitter` (a fraction, 0.0-1.0) of it taken off at random so that many
/// replicas of one server do not reconnect in lock-step.
#[derive(Debug, Clone, PartialEq)]
pub struct Backoff {
    /// Delay before the first retry. Default 100 ms.
    pub initial: Duration,
    /// Upper bound of any delay. Default 30 s.
    pub max: Duration,
    /// Growth per attempt. Default 2.0.
    pub factor: f64,
    /// Fraction of the delay that is randomised away. Default 0.2.
    pub jitter: f64,
    /// Give up after this many consecutive failed attempts (`None`: never). Default `None`.
    pub max_attempts: Option<u32>,
}

impl Default for Backoff {
    fn default() -> Backoff {
        Backoff {
            initial: Duration::from_millis(100),
            max: Duration::from_secs(30),
            factor: 2.0,
            jitter: 0.2,
            max_attempts: None,
        }
    }
}

impl Backoff {
    /// The delay before attempt `attempt` (1-based) without jitter.
    pub fn base_delay(&self, attempt: u32) -> Duration {
        let exp = attempt.saturating_sub(1).min(64) as i32;
        let factor = if self.factor.is_finite() && self.factor >= 1.0 {
            self.factor
        } else {
            1.0
        };
        let secs = self.initial.as_secs_f64() * factor.powi(exp);
        let max = self.max.as_secs_f64();
        if !secs.is_finite() || secs >= max {
            self.max
        } else {
            Duration::from_secs_f64(secs.max(0.0))
        }
    }

    /// The delay before attempt `attempt` (1-based), jitter applied.
    pub fn delay(&self, attempt: u32) -> Duration {
        let base = self.base_delay(attempt);
        let jitter = if self.jitter.is_finite() {
            self.jitter.clamp(0.0, 1.0)
        } else {
            0.0
        };
        // A random fraction from the std hasher's per-process random keys: no rand crate.
        let mut h = RandomState::new().build_hasher();
        h.write_u32(attempt);
        let r = (h.finish() >> 11) as f64 / (1u64 << 53) as f64;
        base.mul_f64(1.0 - jitter * r)
    }

    /// Whether attempt `attempt` (1-based) is allowed.
    pub fn allows(&self, attempt: u32) -> bool {
        self.max_attempts.is_none_or(|m| attempt <= m)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grows_and_caps() {
        let b = Backoff {
            jitter: 0.0,
            ..Backoff::default()
        };
        assert_eq!(b.delay(1), Duration::from_millis(100));
        assert_eq!(b.delay(2), Duration::from_millis(200));
        assert_eq!(b.delay(4), Duration::from_millis(800));
        assert_eq!(b.delay(20), Duration::from_secs(30));
        assert_eq!(b.delay(u32::MAX), Duration::from_secs(30));
    }

    #[test]
    fn jitter_stays_in_range() {
        let b = Backoff::default();
        for n in 1..30 {
            let d = b.delay(n);
            assert!(d <= b.base_delay(n) && d >= b.base_delay(n).mul_f64(0.8));
        }
    }

    #[test]
    fn attempts_limit() {
        let b = Backoff {
            max_attempts: Some(2),
            ..Backoff::default()
        };
        assert!(b.allows(2) && !b.allows(3));
        assert!(Backoff::default().allows(u32::MAX));
    }
}
