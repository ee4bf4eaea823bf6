//! Load limits ([`Limits`]): token buckets on source commands per second, source bytes per
//! second and target writes per second.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Caps on the load a migration puts on the servers. Each is a token bucket refilled at the
/// cap with a burst of 1/20 s worth, so the rate measured over any few seconds stays within
/// one burst of the cap.
///
/// - [`source_max_ops`](Limits::source_max_ops): commands per second sent to the source.
///   Scan mode only (`SCAN`, `DUMP`, `PTTL`, chunked reads, reconcile checks); a `PSYNC`
///   source receives no commands per key, so there it has no effect.
/// - [`max_bandwidth`](Limits::max_bandwidth): bytes per second read from the source. Scan
///   mode: reply bytes; `PSYNC` mode: the RDB transfer and the replication stream are read
///   no faster (a source whose replica output buffer limit is hit will drop the link:
///   raise `client-output-buffer-limit replica` when you throttle a busy source).
/// - [`target_max_ops`](Limits::target_max_ops): commands per second written to the target,
///   both modes.
///
/// [`Progress::throttled`](crate::migrate::Progress::throttled) names the caps that made the
/// migration wait in the last second.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Limits {
    /// Source commands per second (scan mode).
    pub source_max_ops: Option<u64>,
    /// Bytes per second read from the source.
    pub max_bandwidth: Option<u64>,
    /// Target commands per second.
    pub target_max_ops: Option<u64>,
}

impl Limits {
    /// No caps.
    pub fn new() -> Limits {
        Limits::default()
    }

    /// Sets [`Limits::source_max_ops`] (0: no cap).
    pub fn source_max_ops(mut self, n: u64) -> Limits {
        self.source_max_ops = (n > 0).then_some(n);
        self
    }

    /// Sets [`Limits::max_bandwidth`] in bytes per second (0: no cap).
    pub fn max_bandwidth(mut self, bytes_per_sec: u64) -> Limits {
        self.max_bandwidth = (bytes_per_sec > 0).then_some(bytes_per_sec);
        self
    }

    /// Sets [`Limits::target_max_ops`] (0: no cap).
    pub fn target_max_ops(mut self, n: u64) -> Limits {
        self.target_max_ops = (n > 0).then_some(n);
        self
    }
}

/// The buckets of one migration, shared by its tasks and its progress.
#[derive(Debug, Clone, Default)]
pub(crate) struct Buckets {
    pub(crate) source_ops: Option<Arc<Bucket>>,
    pub(crate) source_bytes: Option<Arc<Bucket>>,
    pub(crate) target_ops: Option<Arc<Bucket>>,
}

impl Buckets {
    pub(crate) fn new(l: &Limits) -> Buckets {
        let b = |name, rate: Option<u64>| rate.map(|r| Arc::new(Bucket::new(name, r)));
        Buckets {
            source_ops: b("source-max-ops", l.source_max_ops),
            source_bytes: b("max-bandwidth", l.max_bandwidth),
            target_ops: b("target-max-ops", l.target_max_ops),
        }
    }

    /// The caps that made someone wait in the last second.
    pub(crate) fn throttling(&self) -> Vec<&'static str> {
        [&self.source_ops, &self.source_bytes, &self.target_ops]
            .into_iter()
            .flatten()
            .filter(|b| b.throttled_recently())
            .map(|b| b.name)
            .collect()
    }
}

/// A token bucket that may go into debt: `take(n)` always succeeds and then sleeps until
/// the bucket is back at zero, so one request larger than the burst is allowed but the
/// average never exceeds the rate.
#[derive(Debug)]
pub(crate) struct Bucket {
    name: &'static str,
    rate: f64,
    burst: f64,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    at: Instant,
    last_wait: Option<Instant>,
}

impl Bucket {
    pub(crate) fn new(name: &'static str, rate: u64) -> Bucket {
        let rate = rate.max(1) as f64;
        let burst = (rate / 20.0).max(1.0);
        Bucket {
            name,
            rate,
            burst,
            state: Mutex::new(State {
                tokens: burst,
                at: Instant::now(),
                last_wait: None,
            }),
        }
    }

    /// Takes `n` tokens; how long the caller must wait before going on.
    fn debit(&self, n: u64) -> Duration {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Instant::now();
        let refill = (now - s.at).as_secs_f64() * self.rate;
        s.tokens = (s.tokens + refill).min(self.burst);
        s.at = now;
        s.tokens -= n as f64;
        if s.tokens >= 0.0 {
            return Duration::ZERO;
        }
        s.last_wait = Some(now);
        Duration::from_secs_f64(-s.tokens / self.rate)
    }

    /// Takes `n` tokens, sleeping while the bucket is in debt.
    pub(crate) async fn take(&self, n: u64) {
        let wait = self.debit(n);
        if !wait.is_zero() {
            tokio::time::sleep(wait).await;
        }
    }

    /// Whether taking one token now would wait.
    pub(crate) fn would_wait(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let refill = s.at.elapsed().as_secs_f64() * self.rate;
        (s.tokens + refill).min(self.burst) < 1.0
    }

    fn throttled_recently(&self) -> bool {
        let s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        s.last_wait
            .is_some_and(|t| t.elapsed() < Duration::from_secs(1))
    }
}

/// Takes `n` tokens from `bucket` when there is one.
pub(crate) async fn take(bucket: &Option<Arc<Bucket>>, n: u64) {
    if let Some(b) = bucket {
        b.take(n).await;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn debt_is_paid_by_waiting() {
        let b = Bucket::new("x", 1000);
        // The burst (50) is free, then every token costs 1 ms.
        assert_eq!(b.debit(50), Duration::ZERO);
        let w = b.debit(100);
        assert!(
            w >= Duration::from_millis(95) && w <= Duration::from_millis(101),
            "{w:?}"
        );
        assert!(b.throttled_recently());
        assert_eq!(Limits::new().source_max_ops(0).source_max_ops, None);
    }
}
