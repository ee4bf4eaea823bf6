#!/usr/bin/env bash
# The incremental phase (issue 11): `redis-migrate sync` from a Redis 7.0 source to an empty
# Redis 7.0 target under `redis-benchmark -P 32 -t set,incr,lpush -n LOAD_N -r 100000`
# (3 M writes by default), next to a native replica (REPLICAOF) of the same source.
#
# Each round runs every binary given, in turn (e.g. an older build first, then the new one),
# each on fresh servers. Per run it prints:
# - the tool's CPU (user + sys, /proc) and the target's, from just before the load until the
#   tool has applied the source's offset at the end of the load, and their ratio (goal: tool
#   ≤ 0.5× target); the native replica's CPU over the same span;
# - the marker: right after the load a key is written on the source and polled every 1 ms
#   on the target and on the replica (benches/lag.py marker): when each has the burst's last
#   write, and the difference (goal: the target within 100 ms of the replica);
# - the sampled lag during the load (benches/lag.py stats, from `--progress-interval 0.05`).
#
# Usage: benches/incremental-cpu.sh BINARY...
# Env: RUNS (2), LOAD_N (1000000), SYNC_ARGS (extra `sync` options, e.g. --no-checkpoint),
# TARGET_NICE (a `renice` value for the target server, e.g. -5: does the lag follow the
# target's share of the CPU?), REDIS_SERVER (/usr/bin/redis-server). Servers run on loopback in a temporary directory.
set -euo pipefail
[ $# -ge 1 ] || { echo "usage: $0 BINARY..." >&2; exit 2; }
cd "$(dirname "$0")/.."
runs=${RUNS:-2}
load_n=${LOAD_N:-1000000}
server=${REDIS_SERVER:-/usr/bin/redis-server}
read -r -a sync_args <<<"${SYNC_ARGS:-}"
cli=$(command -v redis-cli)
bench=$(command -v redis-benchmark)
tmp=$(mktemp -d)
pids=()
cleanup() {
  for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
calc() { python3 -c "print(f'{$1:.2f}')"; }
# CPU seconds (user + system) a process has used so far.
cpu() { python3 -c "import os; f=open('/proc/$1/stat').read().rsplit(')',1)[1].split(); print(f'{(int(f[11])+int(f[12]))/os.sysconf(\"SC_CLK_TCK\"):.2f}')"; }
field() { "$cli" -p "$1" info replication | tr -d '\r' | sed -n "s/^$2://p"; }
# start NAME [config...]: an empty Redis in $tmp/NAME; sets $port and $pid.
start() {
  local dir=$tmp/$1
  shift
  rm -rf "$dir" && mkdir -p "$dir"
  port=$(free_port)
  "$server" --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
    --repl-diskless-sync yes --repl-diskless-sync-delay 0 --logfile "$dir/server.log" \
    "$@" </dev/null >/dev/null 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 200); do
    [ "$("$cli" -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "bench: $dir did not start" >&2
  exit 1
}
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $($server --version | cut -d' ' -f1-3)"
echo "load: redis-benchmark -P 32 -t set,incr,lpush -n $load_n -r 100000; sync ${sync_args[*]:-(defaults)}"
for round in $(seq "$runs"); do
  for bin in "$@"; do
    start src
    src=$port src_pid=$pid
    start dst
    dst=$port dst_pid=$pid
    [ -z "${TARGET_NICE:-}" ] || renice -n "$TARGET_NICE" -p "$dst_pid" >/dev/null
    start rep
    rep=$port rep_pid=$pid
    "$cli" -p "$rep" replicaof 127.0.0.1 "$src" >/dev/null
    out=$tmp/run-$round-$(basename "$bin")
    mkdir -p "$out"
    "$bin" sync --from "redis://127.0.0.1:$src" --to "redis://127.0.0.1:$dst" \
      --progress-interval 0.05 "${sync_args[@]}" \
      2> >(python3 benches/lag.py record "$src" "$out") &
    tool=$!
    pids+=("$tool")
    deadline=$((SECONDS + 60))
    until grep -q 'incremental: ' "$out/progress.log" 2>/dev/null &&
      [ "$(field "$rep" master_link_status)" = up ]; do
      [ $SECONDS -lt $deadline ] || { echo "sync or the replica did not start" >&2; exit 1; }
      sleep 0.1
    done
    sleep 0.5
    cpu_tool0=$(cpu "$tool") cpu_dst0=$(cpu "$dst_pid") cpu_rep0=$(cpu "$rep_pid")
    load0=$(cut -d' ' -f1 /proc/loadavg)
    t0=$(now)
    rps=$("$bench" -h 127.0.0.1 -p "$src" -P 32 -t set,incr,lpush -n "$load_n" -r 100000 -q |
      tr '\r' '\n' | grep 'requests per second' | sed 's/ requests per second.*//' | tr '\n' ' ')
    t1=$(now)
    # Right after the burst: when do the target and the replica have its last write?
    read -r m_dst m_rep < <(python3 benches/lag.py marker "$src" "$dst" "$rep")
    end_off=$(field "$src" master_repl_offset)
    deadline=$((SECONDS + 300))
    until [ "$(tail -n 1 "$out/applied.tsv" | cut -f2)" -ge "$end_off" ] 2>/dev/null; do
      [ $SECONDS -lt $deadline ] || { echo "sync did not catch up" >&2; break; }
      sleep 0.01
    done
    t_catch=$(calc "$(now) - $t1")
    tool_cpu=$(calc "$(cpu "$tool") - $cpu_tool0")
    dst_cpu=$(calc "$(cpu "$dst_pid") - $cpu_dst0")
    rep_cpu=$(calc "$(cpu "$rep_pid") - $cpu_rep0")
    kill -INT "$tool"
    wait "$tool" || true
    behind=--
    [ "$m_dst" = -- ] || [ "$m_rep" = -- ] || behind=$(python3 -c "print(f'{($m_dst - $m_rep) * 1000:.0f}')")
    echo "round $round $bin: load $(calc "$t1 - $t0") s ($rps), load avg $load0"
    echo "    CPU tool $tool_cpu s, target $dst_cpu s, tool/target $(calc "$tool_cpu / $dst_cpu"); replica $rep_cpu s"
    echo "    marker on the target after $m_dst s, on the replica after $m_rep s: target behind by $behind ms; applied the load's end offset $t_catch s after it"
    echo "    sampled lag: $(python3 benches/lag.py stats "$out" "$t0" "$t1")"
    stop "$rep_pid"
    stop "$dst_pid"
    stop "$src_pid"
  done
done
