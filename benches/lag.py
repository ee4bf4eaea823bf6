#!/usr/bin/env python3
"""Replication lag of `redis-migrate sync` under a write load (used by migrate-bench.sh).

record PORT OUT: reads redis-migrate's plain progress lines on stdin (`... applied offset N`)
    and, in a thread, polls the source's `master_repl_offset` every 10 ms; writes
    OUT/source.tsv and OUT/applied.tsv (wall time, offset).
stats OUT T0 T1: for every applied sample taken between T0 and T1 (wall time), the lag in
    bytes (source offset at that moment minus applied offset) and in time (now minus the
    moment the source first reached the applied offset, to the 10 ms poll resolution);
    prints p50/p99/max.
marker SRC PORT...: right after a write burst, writes a marker key on the source (port SRC)
    and polls every PORT (the target, a native replica of the same source) every 1 ms until
    it holds the marker: prints, per port, the seconds from the write to its arrival. The
    marker comes after the burst in the replication stream, so this is when each side has
    the burst's last write (`--` for a port that did not get it within 120 s).
"""
import re
import socket
import sys
import threading
import time

APPLIED = re.compile(rb"applied offset (\d+)")


def poll_source(port, out, stop):
    s = socket.create_connection(("127.0.0.1", port))
    f = s.makefile("rb")
    with open(out, "w") as w:
        while not stop.is_set():
            s.sendall(b"INFO replication\r\n")
            header = f.readline()  # $<len>
            body = f.read(int(header[1:]) + 2)
            now = time.time()
            m = re.search(rb"master_repl_offset:(\d+)", body)
            if m:
                w.write(f"{now:.6f}\t{int(m.group(1))}\n")
            time.sleep(0.01)


def record(port, out):
    stop = threading.Event()
    t = threading.Thread(target=poll_source, args=(port, f"{out}/source.tsv", stop))
    t.start()
    with open(f"{out}/applied.tsv", "w") as w, open(f"{out}/progress.log", "wb") as log:
        for line in sys.stdin.buffer:
            now = time.time()
            log.write(line)
            m = APPLIED.search(line)
            if m:
                w.write(f"{now:.6f}\t{int(m.group(1))}\n")
                w.flush()
    stop.set()
    t.join()


def load(path):
    with open(path) as f:
        return [(float(a), int(b)) for a, b in (l.split() for l in f if l.strip())]


def pct(xs, p):
    xs = sorted(xs)
    return xs[min(len(xs) - 1, int(round(p / 100 * (len(xs) - 1))))]


def stats(out, t0, t1):
    src = load(f"{out}/source.tsv")
    app = [(t, a) for t, a in load(f"{out}/applied.tsv") if t0 <= t <= t1]
    lag_b, lag_t = [], []
    i = 0
    for t, a in app:
        while i + 1 < len(src) and src[i + 1][0] <= t:
            i += 1
        lag_b.append(max(0, src[i][1] - a))
        reached = next((ts for ts, o in src if o >= a), t)
        lag_t.append(max(0.0, t - reached) if a < src[i][1] else 0.0)
    if not app:
        print("no samples")
        return
    print(
        f"samples={len(app)} "
        f"bytes_p50={pct(lag_b, 50)} bytes_p99={pct(lag_b, 99)} bytes_max={max(lag_b)} "
        f"ms_p50={pct(lag_t, 50) * 1000:.0f} ms_p99={pct(lag_t, 99) * 1000:.0f} "
        f"ms_max={max(lag_t) * 1000:.0f}"
    )


def command(*args):
    out = b"*%d\r\n" % len(args)
    for a in args:
        a = a if isinstance(a, bytes) else str(a).encode()
        out += b"$%d\r\n%s\r\n" % (len(a), a)
    return out


def reply(f):
    line = f.readline()
    if line[:1] == b"$":
        n = int(line[1:])
        return None if n < 0 else f.read(n + 2)[:-2]
    return line[:-2]


def marker(src, ports):
    value = f"{time.time():.6f}".encode()
    conns = []
    for p in ports:
        s = socket.create_connection(("127.0.0.1", p))
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conns.append((p, s, s.makefile("rb")))
    w = socket.create_connection(("127.0.0.1", src))
    wf = w.makefile("rb")
    get = command("GET", "bench:lag-marker")
    w.sendall(command("SET", "bench:lag-marker", value))
    t0 = time.monotonic()
    reply(wf)
    seen = {}
    while len(seen) < len(conns) and time.monotonic() - t0 < 120:
        for p, s, f in conns:
            if p in seen:
                continue
            s.sendall(get)
            if reply(f) == value:
                seen[p] = time.monotonic() - t0
        time.sleep(0.001)
    print(" ".join(f"{seen[p]:.3f}" if p in seen else "--" for p in ports))


if __name__ == "__main__":
    if sys.argv[1] == "record":
        record(int(sys.argv[2]), sys.argv[3])
    elif sys.argv[1] == "marker":
        marker(int(sys.argv[2]), [int(p) for p in sys.argv[3:]])
    else:
        stats(sys.argv[2], float(sys.argv[3]), float(sys.argv[4]))
