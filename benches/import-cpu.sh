#!/usr/bin/env bash
# The tool's CPU time against the target's for `redis-migrate import FILE` (issue 11's goal:
# tool ≤ 0.3× target). Each round imports the file with every binary given, in turn, into a
# fresh empty Redis 7.0; per run it prints the wall time, the tool's CPU (user + sys, GNU
# time), the target's CPU (INFO cpu used_cpu_user + used_cpu_sys, after minus before) and
# their ratio, and the keys loaded (DBSIZE of db 0-2).
#
# Usage: benches/import-cpu.sh BINARY... (e.g. an older build first, then the new one)
# Env: DATASET (default /work/bench-data/bench-redis-7.0.rdb), RUNS (2), REDIS_SERVER
# (/usr/bin/redis-server).
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
dataset=${DATASET:-/work/bench-data/bench-redis-7.0.rdb}
runs=${RUNS:-2}
server=${REDIS_SERVER:-/usr/bin/redis-server}
cli=$(command -v redis-cli)
tmp=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
cpu() {
  "$cli" -p "$1" info cpu | tr -d '\r' |
    awk -F: '/^used_cpu_(user|sys):/ { s += $2 } END { printf "%.2f", s }'
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $($server --version | cut -d' ' -f1-3)"
echo "dataset: $dataset ($(stat -c %s "$dataset") bytes)"
for round in $(seq "$runs"); do
  for bin in "$@"; do
    port=$(free_port)
    rm -rf "$tmp/srv" && mkdir -p "$tmp/srv"
    "$server" --port "$port" --bind 127.0.0.1 --dir "$tmp/srv" --save "" --appendonly no \
      --logfile "$tmp/srv/log" </dev/null >/dev/null 2>&1 &
    pid=$!
    for _ in $(seq 200); do
      [ "$("$cli" -p "$port" ping 2>/dev/null)" = PONG ] && break
      sleep 0.05
    done
    before=$(cpu "$port")
    /usr/bin/time -o "$tmp/time" -f "%e %U %S" "$bin" import "$dataset" \
      --to "redis://127.0.0.1:$port" >/dev/null 2>"$tmp/err" || {
      echo "$bin failed:" >&2
      tail -5 "$tmp/err" >&2
      exit 1
    }
    after=$(cpu "$port")
    keys=$(for db in 0 1 2; do "$cli" -p "$port" -n "$db" dbsize; done | paste -sd+ | bc)
    read -r wall user sys <"$tmp/time"
    python3 - "$round" "$bin" "$wall" "$user" "$sys" "$before" "$after" "$keys" <<'EOF'
import sys
r, b, wall, user, sys_, before, after, keys = sys.argv[1:]
tool = float(user) + float(sys_)
target = float(after) - float(before)
print(f"round {r} {b}: wall {float(wall):.2f} s, tool CPU {tool:.2f} s, "
      f"target CPU {target:.2f} s, tool/target {tool / target:.2f}, keys {keys}")
EOF
    kill "$pid"
    wait "$pid" 2>/dev/null || true
    pid=
  done
done
