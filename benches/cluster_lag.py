#!/usr/bin/env python3
"""Per-shard replication lag of `redis-migrate sync` and of native replicas (cluster-bench.sh).

sample OUT METRICS SHARDS: until OUT/stop exists, every 20 ms reads each source master's
    `master_repl_offset`, each native replica's processed offset (its own
    `master_repl_offset`) and the tool's `redis_migrate_shard_applied_offset{shard=...}` from
    http://METRICS/metrics; writes OUT/samples.tsv (wall time, shard, source, replica, tool).
    SHARDS: "shard=SRC_PORT:REPLICA_PORT,..." (shard as the tool names it: s0, s5461, ...).
stats OUT T0 T1: for the samples between T0 and T1 (wall time), the lag of the tool and of
    the replicas in bytes (source offset minus applied offset, per shard) and in time (now
    minus the moment the source first reached the applied offset, to the poll resolution);
    prints p50/p99/max of each over all shards.
markers VALUE SOURCES TARGETS REPLICAS KEYS: writes KEYS[i] = VALUE on source master
    SOURCES[i] (comma-separated ports; KEYS one per master, in its slots), then polls every
    millisecond until every key is on some target master (TARGETS) and KEYS[i] is on
    REPLICAS[i]; prints "target=SECS replicas=SECS" (after the writes; 120 s at most).
"""
import os
import re
import socket
import sys
import time
import urllib.request

OFFSET = re.compile(rb"master_repl_offset:(\d+)")
APPLIED = re.compile(r'redis_migrate_shard_applied_offset\{shard="([^"]+)"\} (\d+)')


class Conn:
    def __init__(self, port):
        self.s = socket.create_connection(("127.0.0.1", port))
        self.f = self.s.makefile("rb")

    def get(self, key):
        self.s.sendall(b"GET " + key.encode() + b"\r\n")
        line = self.f.readline()
        if line.startswith(b"$") and int(line[1:]) >= 0:
            return self.f.read(int(line[1:]) + 2)[:-2].decode()
        return None  # nil, or MOVED from a master that does not own the slot

    def offset(self):
        self.s.sendall(b"INFO replication\r\n")
        header = self.f.readline()
        body = self.f.read(int(header[1:]) + 2)
        m = OFFSET.search(body)
        return int(m.group(1)) if m else -1


def applied(metrics):
    try:
        with urllib.request.urlopen(f"http://{metrics}/metrics", timeout=1) as r:
            text = r.read().decode()
    except OSError:
        return {}
    return {m.group(1): int(m.group(2)) for m in APPLIED.finditer(text)}


def sample(out, metrics, shards):
    conns = []
    for item in shards.split(","):
        shard, ports = item.split("=")
        src, rep = ports.split(":")
        conns.append((shard, Conn(int(src)), Conn(int(rep))))
    with open(f"{out}/samples.tsv", "w") as w:
        while not os.path.exists(f"{out}/stop"):
            tool = applied(metrics)
            now = time.time()
            for shard, src, rep in conns:
                w.write(f"{now:.6f}\t{shard}\t{src.offset()}\t{rep.offset()}\t{tool.get(shard, -1)}\n")
            w.flush()
            time.sleep(0.02)


def markers(value, sources, targets, replicas, keys):
    ports = lambda s: [int(p) for p in s.split(",")]
    keys = keys.split(",")
    src = [Conn(p) for p in ports(sources)]
    tgt = [Conn(p) for p in ports(targets)]
    rep = [Conn(p) for p in ports(replicas)]
    for c, k in zip(src, keys):
        c.s.sendall(f"SET {k} {value}\r\n".encode())
        c.f.readline()
    t0 = time.time()
    seen = {"target": None, "replicas": None}
    while None in seen.values() and time.time() - t0 < 120:
        if seen["target"] is None and all(any(c.get(k) == value for c in tgt) for k in keys):
            seen["target"] = time.time() - t0
        if seen["replicas"] is None and all(c.get(k) == value for c, k in zip(rep, keys)):
            seen["replicas"] = time.time() - t0
        time.sleep(0.001)
    print(" ".join(f"{k}={v:.3f}" if v is not None else f"{k}=n/a" for k, v in seen.items()))


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def stats(out, t0, t1):
    rows = []
    with open(f"{out}/samples.tsv") as f:
        for line in f:
            t, shard, s, r, a = line.split()
            rows.append((float(t), shard, int(s), int(r), int(a)))
    by_shard = {}
    for row in rows:
        by_shard.setdefault(row[1], []).append(row)
    lags = {"tool": ([], []), "replicas": ([], [])}
    for series in by_shard.values():
        for t, _, src, rep, tool in series:
            if not t0 <= t <= t1:
                continue
            for name, got in (("tool", tool), ("replicas", rep)):
                if got < 0:
                    continue
                lag_b, lag_t = lags[name]
                lag_b.append(max(0, src - got))
                if got < src:
                    reached = next((ts for ts, _, o, _, _ in series if o >= got), t)
                    lag_t.append(max(0.0, t - reached))
                else:
                    lag_t.append(0.0)
    parts = []
    for name, (lag_b, lag_t) in lags.items():
        if not lag_b:
            parts.append(f"{name}: no samples")
            continue
        parts.append(
            f"{name}: bytes p50={pct(lag_b, 50)} p99={pct(lag_b, 99)} max={max(lag_b)}, "
            f"ms p50={pct(lag_t, 50) * 1000:.0f} p99={pct(lag_t, 99) * 1000:.0f} "
            f"max={max(lag_t) * 1000:.0f}"
        )
    print(f"samples={len(rows)}; " + "; ".join(parts))


if __name__ == "__main__":
    if sys.argv[1] == "sample":
        sample(sys.argv[2], sys.argv[3], sys.argv[4])
    elif sys.argv[1] == "markers":
        markers(*sys.argv[2:7])
    else:
        stats(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
