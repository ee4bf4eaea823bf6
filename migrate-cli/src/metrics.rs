//! `--metrics-addr HOST:PORT`: Prometheus text on `/metrics` and a JSON `/status` (the same
//! figures plus the settings, credentials redacted), served while `sync` or `import` runs.
//!
//! The exposition format comes from `prometheus-client` (the Prometheus project's Rust
//! client); the HTTP side is a few lines of tokio: one `GET` per connection, bounded in size
//! and time, anything else answered 404 or 400.

use std::fmt::Write as _;
use std::sync::atomic::AtomicU64;
use std::sync::Mutex;
use std::time::Duration;

use migrate_core::migrate::{Progress, ProgressWatcher};
use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::registry::Registry;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// Longest request head read.
const MAX_REQUEST: usize = 8 << 10;
/// How long a client may take to send its request.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

type Labels = Vec<(String, String)>;
/// Reads one figure of a snapshot.
type Field<T> = fn(&Progress) -> T;

/// The metrics, updated from a [`Progress`] snapshot at every scrape.
struct Metrics {
    registry: Registry,
    phase: Family<Labels, Gauge>,
    counters: Vec<(Counter, Field<u64>)>,
    gauges: Vec<(Gauge, Field<i64>)>,
    floats: Vec<(Gauge<f64, AtomicU64>, Field<f64>)>,
    /// Last value seen per counter (counters only go up by the difference).
    last: Vec<u64>,
    /// A cluster source: per-shard figures, labelled `shard="s0"`.
    shard_gauges: Vec<(Family<Labels, Gauge>, Field<i64>)>,
    shard_counters: Vec<(Family<Labels, Counter>, Field<u64>)>,
    /// Last value seen per (shard counter, shard).
    shard_last: std::collections::HashMap<(usize, String), u64>,
}

const PHASES: [&str; 5] = ["connecting", "full-sync", "incremental", "stopping", "done"];

impl Metrics {
    fn new() -> Metrics {
        let mut registry = Registry::with_prefix("redis_migrate");
        let phase = Family::<Labels, Gauge>::default();
        registry.register(
            "phase",
            "The migration's phase: 1 for the current one",
            phase.clone(),
        );
        let mut counters: Vec<(Counter, Field<u64>)> = Vec::new();
        for (name, help, f) in [
            (
                "rdb_bytes",
                "RDB bytes decoded in the current full sync",
                (|p: &Progress| p.rdb_bytes) as fn(&Progress) -> u64,
            ),
            ("keys_written", "Full-sync keys written", |p| p.keys_written),
            (
                "keys_skipped",
                "Full-sync keys skipped (expired, filtered, existing)",
                |p| p.keys_skipped,
            ),
            (
                "commands_applied",
                "Replicated commands applied to the target",
                |p| p.commands_applied,
            ),
            ("failures", "Failed writes", |p| p.failures),
            (
                "unsupported",
                "Keys and commands the target cannot hold",
                |p| p.unsupported,
            ),
            ("full_syncs", "Full syncs (healing ones included)", |p| {
                p.full_syncs
            }),
            (
                "partial_resyncs",
                "Partial resyncs (after link failures or from the checkpoint)",
                |p| p.partial_resyncs,
            ),
            ("disconnects", "Replication link failures", |p| {
                p.disconnects
            }),
        ] {
            let c = Counter::default();
            registry.register(name, help, c.clone());
            counters.push((c, f));
        }
        let mut gauges: Vec<(Gauge, Field<i64>)> = Vec::new();
        for (name, help, f) in [
            (
                "lag_bytes",
                "Replication stream bytes sent by the source and not applied yet",
                (|p: &Progress| p.lag_bytes as i64) as fn(&Progress) -> i64,
            ),
            ("source_offset", "Source replication offset received", |p| {
                p.source_offset as i64
            }),
            (
                "applied_offset",
                "Source replication offset applied to the target",
                |p| p.applied_offset as i64,
            ),
            (
                "checkpoint_offset",
                "Source offset of the last checkpoint written to the target (-1: none yet)",
                |p| p.checkpoint_offset.map_or(-1, |o| o as i64),
            ),
            (
                "rdb_total_bytes",
                "RDB size when known (-1: unknown)",
                |p| p.rdb_total.map_or(-1, |t| t as i64),
            ),
        ] {
            let g = Gauge::default();
            registry.register(name, help, g.clone());
            gauges.push((g, f));
        }
        let mut floats: Vec<(Gauge<f64, AtomicU64>, Field<f64>)> = Vec::new();
        for (name, help, f) in [
            (
                "lag_seconds",
                "How long the target has been behind the source",
                (|p: &Progress| p.lag_time.as_secs_f64()) as fn(&Progress) -> f64,
            ),
            (
                "rdb_bytes_per_second",
                "Full-sync RDB bytes per second",
                |p| p.rdb_bytes_per_sec,
            ),
            ("keys_per_second", "Full-sync keys per second", |p| {
                p.keys_per_sec
            }),
            ("elapsed_seconds", "Time since the start", |p| {
                p.elapsed.as_secs_f64()
            }),
        ] {
            let g = Gauge::<f64, AtomicU64>::default();
            registry.register(name, help, g.clone());
            floats.push((g, f));
        }
        let last = vec![0; counters.len()];
        let mut shard_gauges: Vec<(Family<Labels, Gauge>, Field<i64>)> = Vec::new();
        for (name, help, f) in [
            (
                "shard_lag_bytes",
                "A cluster source's shard: stream bytes not applied yet",
                (|p: &Progress| p.lag_bytes as i64) as fn(&Progress) -> i64,
            ),
            (
                "shard_source_offset",
                "A cluster source's shard: replication offset received",
                |p| p.source_offset as i64,
            ),
            (
                "shard_applied_offset",
                "A cluster source's shard: replication offset applied",
                |p| p.applied_offset as i64,
            ),
            (
                "shard_checkpoint_offset",
                "A cluster source's shard: offset of its last checkpoint (-1: none yet)",
                |p| p.checkpoint_offset.map_or(-1, |o| o as i64),
            ),
        ] {
            let g = Family::<Labels, Gauge>::default();
            registry.register(name, help, g.clone());
            shard_gauges.push((g, f));
        }
        let mut shard_counters: Vec<(Family<Labels, Counter>, Field<u64>)> = Vec::new();
        for (name, help, f) in [
            (
                "shard_commands_applied",
                "A cluster source's shard: replicated commands applied",
                (|p: &Progress| p.commands_applied) as fn(&Progress) -> u64,
            ),
            (
                "shard_full_syncs",
                "A cluster source's shard: full syncs",
                |p| p.full_syncs,
            ),
            (
                "shard_partial_resyncs",
                "A cluster source's shard: partial resyncs",
                |p| p.partial_resyncs,
            ),
        ] {
            let c = Family::<Labels, Counter>::default();
            registry.register(name, help, c.clone());
            shard_counters.push((c, f));
        }
        Metrics {
            registry,
            phase,
            counters,
            gauges,
            floats,
            last,
            shard_gauges,
            shard_counters,
            shard_last: std::collections::HashMap::new(),
        }
    }

    fn render(&mut self, p: &Progress) -> String {
        for name in PHASES {
            let on = i64::from(p.phase.as_str() == name);
            self.phase
                .get_or_create(&vec![("phase".to_string(), name.to_string())])
                .set(on);
        }
        for (i, (c, f)) in self.counters.iter().enumerate() {
            let now = f(p);
            // A new full sync starts its RDB byte count again: count the new bytes.
            let delta = if now >= self.last[i] {
                now - self.last[i]
            } else {
                now
            };
            c.inc_by(delta);
            self.last[i] = now;
        }
        for (g, f) in &self.gauges {
            g.set(f(p));
        }
        for (g, f) in &self.floats {
            g.set(f(p));
        }
        for shard in &p.shards {
            let labels = vec![("shard".to_string(), shard.id.clone())];
            for (g, f) in &self.shard_gauges {
                g.get_or_create(&labels).set(f(&shard.progress));
            }
            for (i, (c, f)) in self.shard_counters.iter().enumerate() {
                let now = f(&shard.progress);
                let last = self.shard_last.entry((i, shard.id.clone())).or_default();
                c.get_or_create(&labels).inc_by(now.saturating_sub(*last));
                *last = now.max(*last);
            }
        }
        let mut out = String::new();
        let _ = encode(&mut out, &self.registry);
        out
    }
}

/// A JSON string literal.
fn json_str(s: &str) -> String {
    let mut out = String::from("\"");
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

fn status_json(p: &Progress, settings: &[(String, String)]) -> String {
    let opt = |v: Option<u64>| v.map_or("null".to_string(), |v| v.to_string());
    let settings: Vec<String> = settings
        .iter()
        .map(|(k, v)| format!("{}: {}", json_str(k), json_str(v)))
        .collect();
    let shards: Vec<String> = p
        .shards
        .iter()
        .map(|s| {
            let q = &s.progress;
            format!(
                "{{\"id\": {}, \"node\": {}, \"slots\": {}, \"phase\": {}, \"synced\": {}, \"keys_written\": {}, \"commands_applied\": {}, \"lag_bytes\": {}, \"source_offset\": {}, \"applied_offset\": {}, \"checkpoint_offset\": {}, \"full_syncs\": {}, \"partial_resyncs\": {}}}",
                json_str(&s.id),
                json_str(&s.node),
                json_str(&s.slots),
                json_str(q.phase.as_str()),
                s.synced(),
                q.keys_written,
                q.commands_applied,
                q.lag_bytes,
                q.source_offset,
                q.applied_offset,
                opt(q.checkpoint_offset),
                q.full_syncs,
                q.partial_resyncs
            )
        })
        .collect();
    format!(
        "{{\"phase\": {}, \"elapsed_seconds\": {:.3}, \"rdb_bytes\": {}, \"rdb_total_bytes\": {}, \
         \"keys_written\": {}, \"keys_skipped\": {}, \"commands_applied\": {}, \"failures\": {}, \
         \"unsupported\": {}, \"lag_bytes\": {}, \"lag_seconds\": {:.3}, \"source_offset\": {}, \
         \"applied_offset\": {}, \"checkpoint_offset\": {}, \"full_syncs\": {}, \
         \"partial_resyncs\": {}, \"disconnects\": {}, \"shards\": [{}], \"settings\": {{{}}}}}\n",
        json_str(p.phase.as_str()),
        p.elapsed.as_secs_f64(),
        p.rdb_bytes,
        opt(p.rdb_total),
        p.keys_written,
        p.keys_skipped,
        p.commands_applied,
        p.failures,
        p.unsupported,
        p.lag_bytes,
        p.lag_time.as_secs_f64(),
        p.source_offset,
        p.applied_offset,
        opt(p.checkpoint_offset),
        p.full_syncs,
        p.partial_resyncs,
        p.disconnects,
        shards.join(", "),
        settings.join(", ")
    )
}

/// Binds `addr` now (so a bad address is an error before the migration starts) and serves
/// in the background until the runtime ends.
pub(crate) async fn serve(
    addr: &str,
    watcher: ProgressWatcher,
    settings: Vec<(String, String)>,
) -> std::io::Result<std::net::SocketAddr> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    let metrics = std::sync::Arc::new(Mutex::new(Metrics::new()));
    let settings = std::sync::Arc::new(settings);
    tokio::spawn(async move {
        loop {
            let Ok((stream, _)) = listener.accept().await else {
                continue;
            };
            let (w, m, s) = (watcher.clone(), metrics.clone(), settings.clone());
            tokio::spawn(async move {
                let _ = tokio::time::timeout(REQUEST_TIMEOUT, answer(stream, &w, &m, &s)).await;
            });
        }
    });
    Ok(local)
}

async fn answer(
    mut stream: TcpStream,
    watcher: &ProgressWatcher,
    metrics: &Mutex<Metrics>,
    settings: &[(String, String)],
) -> std::io::Result<()> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut chunk).await?;
        if n == 0 || buf.len() + n > MAX_REQUEST {
            return Ok(());
        }
        buf.extend_from_slice(&chunk[..n]);
    }
    let head = String::from_utf8_lossy(&buf);
    let mut words = head.split_whitespace();
    let (method, path) = (words.next().unwrap_or(""), words.next().unwrap_or(""));
    let path = path.split('?').next().unwrap_or("");
    let (status, kind, body) = match (method, path) {
        ("GET", "/metrics") => {
            let p = watcher.progress();
            let body = metrics.lock().map(|mut m| m.render(&p)).unwrap_or_default();
            (
                "200 OK",
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body,
            )
        }
        ("GET", "/status") => (
            "200 OK",
            "application/json",
            status_json(&watcher.progress(), settings),
        ),
        ("GET", _) => (
            "404 Not Found",
            "text/plain",
            "try /metrics or /status\n".into(),
        ),
        _ => ("400 Bad Request", "text/plain", "GET only\n".into()),
    };
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {kind}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes()).await?;
    stream.write_all(body.as_bytes()).await?;
    stream.shutdown().await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn metrics_render_and_counters_follow_snapshots() {
        let mut m = Metrics::new();
        let mut p = Progress::default();
        p.keys_written = 5;
        let text = m.render(&p);
        assert!(
            text.contains("redis_migrate_keys_written_total 5"),
            "{text}"
        );
        assert!(
            text.contains("redis_migrate_phase{phase=\"connecting\"} 1"),
            "{text}"
        );
        assert!(text.contains("# EOF"), "{text}");
        p.keys_written = 9;
        let text = m.render(&p);
        assert!(
            text.contains("redis_migrate_keys_written_total 9"),
            "{text}"
        );
        let mut shard = migrate_core::migrate::ShardProgress::default();
        shard.id = "s5461".into();
        shard.progress.lag_bytes = 7;
        shard.progress.commands_applied = 3;
        p.shards.push(shard);
        let text = m.render(&p);
        assert!(
            text.contains("redis_migrate_shard_lag_bytes{shard=\"s5461\"} 7")
                && text.contains("redis_migrate_shard_commands_applied_total{shard=\"s5461\"} 3"),
            "{text}"
        );
        let j = status_json(&p, &[("target".into(), "redis://:***@h:1".into())]);
        assert!(j.contains("\"shards\": [{\"id\": \"s5461\""), "{j}");
        assert!(
            j.contains("\"keys_written\": 9") && j.contains("\"target\": \"redis://:***@h:1\""),
            "{j}"
        );
    }
}
