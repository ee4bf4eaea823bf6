#!/usr/bin/env bash
# End-to-end benchmark of `redis-migrate` against the native and peer ways, same run
# (issue 6). Results go to stdout; migrate-cli/README.md "Benchmarks" holds a run.
#
#  1. full sync: `redis-migrate sync --once` from a loaded Redis 7.0 to an empty one, versus
#     native `REPLICAOF` between the same kind of servers (diskless master, delay 0; timed
#     until master_link_status:up and master_sync_in_progress:0). DBSIZE per db checked.
#  2. import: `redis-migrate import FILE` versus `rdb --format protocol FILE | redis-cli
#     --pipe` (the `rdb` 0.4 crate's CLI), each into a fresh empty Redis 7.0.
#  3. incremental lag: `redis-migrate sync` while `redis-benchmark -P 16` writes to the
#     source; the lag in bytes and time from `--progress-interval` lines and the source's
#     master_repl_offset (benches/lag.py), p50/p99.
#  4. checkpoint cost (ONLY=ckpt): the same load at -P 32 (SET, INCR, LPUSH) into an empty
#     source, `sync` with the default checkpoint (each batch of replicated commands in one
#     MULTI/EXEC with the checkpoint) against `--no-checkpoint`, alternated: load throughput,
#     catch-up time after the load, lag p50/p99, and the CPU time of the tool and of the
#     target (from /proc).
#
# Env: DATASET (default /work/bench-data/bench-redis-7.0.rdb, else made with testkit's
# `dataset bench redis-7.0`), RUNS (2), PEER_RDB (path of the `rdb` 0.4 binary; default
# `rdb` on PATH; skipped when missing), REDIS_SERVER (/usr/bin/redis-server), LOAD_N
# (requests per redis-benchmark test, 1000000), ONLY (sync|import|lag: one part), BIN (a
# redis-migrate binary to measure instead of building this tree).
# Servers run on loopback in a temporary directory and are killed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

runs=${RUNS:-2}
server=${REDIS_SERVER:-/usr/bin/redis-server}
cli=$(command -v redis-cli)
bench=$(command -v redis-benchmark)
peer=${PEER_RDB:-$(command -v rdb || true)}
load_n=${LOAD_N:-1000000}
only=${ONLY:-all}
target_dir=${CARGO_TARGET_DIR:-$root/target}

if [ -n "${BIN:-}" ]; then
  bin=$BIN # another build (an A/B against an older one)
else
  echo "== building redis-migrate (release)"
  cargo build --quiet --release -p migrate-cli --bin redis-migrate
  bin=$target_dir/release/redis-migrate
fi

dataset=${DATASET:-/work/bench-data/bench-redis-7.0.rdb}
if [ "$only" = ckpt ]; then
  dataset=/dev/null
elif [ ! -f "$dataset" ]; then
  dataset=$target_dir/bench-redis-7.0.rdb
  if [ ! -f "$dataset" ]; then
    echo "== making the dataset (testkit dataset bench redis-7.0)"
    cargo run --quiet --release -p testkit --example dataset -- bench redis-7.0 "$dataset"
  fi
fi
dataset=$(realpath "$dataset")

tmp=$(mktemp -d)
pids=()
cleanup() {
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$tmp"
}
trap cleanup EXIT

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'
}
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }

# start NAME [--load] [config...]: starts a Redis 7.0 in $tmp/NAME, sets $port and $pid;
# --load: with the dataset as its dump.rdb, returns once it is loaded.
start() {
  local name=$1 dir=$tmp/$1
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
  if [ "${1:-}" = --load ]; then
    ln -s "$dataset" "$dir/dump.rdb"
    shift
  fi
  port=$(free_port)
  "$server" --port "$port" --bind 127.0.0.1 --dir "$dir" --save "" --appendonly no \
    --repl-diskless-sync yes --repl-diskless-sync-delay 0 --logfile "$dir/server.log" \
    "$@" </dev/null >/dev/null 2>&1 &
  pid=$!
  pids+=("$pid")
  for _ in $(seq 1200); do
    [ "$("$cli" -p "$port" ping 2>/dev/null)" = PONG ] && return 0
    sleep 0.05
  done
  echo "bench: $name did not start; its log:" >&2
  tail "$dir/server.log" >&2
  exit 1
}
stop() {
  kill "$1" 2>/dev/null || true
  wait "$1" 2>/dev/null || true
}
keyspace() { "$cli" -p "$1" info keyspace | grep '^db' | sed 's/,avg_ttl.*//' | tr -d '\r' | tr '\n' ' '; }
# Keys without a TTL per db ("db0:N db1:N ..."): exact; keys with a TTL expire while we run.
persistent() { # keys without a TTL per db, not counting the tool's reserved keys (checkpoint)
  "$cli" -p "$1" info keyspace | tr -d '\r' |
    sed -n 's/^\(db[0-9]*\):keys=\([0-9]*\),expires=\([0-9]*\).*/\1 \2 \3/p' |
    while read -r db k e; do
      r=$("$cli" -p "$1" -n "${db#db}" --scan --pattern '__redis-migrate:*' | wc -l)
      printf '%s:%s ' "$db" $((k - e - r))
    done
}
volatile() {
  "$cli" -p "$1" info keyspace | tr -d '\r' | sed -n 's/.*,expires=\([0-9]*\).*/\1/p' |
    paste -sd+ | bc
}
# Streams in every db (redis-cli 7.0 has no `--scan --type`).
streams() {
  local n=0 db
  for db in 0 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15; do
    n=$((n + $("$cli" -p "$1" -n "$db" eval "local c='0' local n=0 repeat local r=redis.call('SCAN',c,'COUNT',10000,'TYPE','stream') c=r[1] n=n+#r[2] until c=='0' return n" 0)))
  done
  echo "$n"
}
field() { "$cli" -p "$1" info replication | tr -d '\r' | sed -n "s/^$2://p"; }

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $($server --version | cut -d' ' -f1-3)"
if [ "$only" != ckpt ]; then
  echo "dataset: $dataset ($(stat -c %s "$dataset") bytes)"
  start src --load
  src=$port
  echo "source keyspace: $(keyspace "$src"); streams: $(streams "$src")"
fi

check() { # check WHAT PORT: persistent keys per db equal the source's; keys with a TTL near it
  local got want
  got=$(persistent "$2")
  want=$(persistent "$src")
  if [ "$got" = "$want" ]; then
    echo "    $1: keys without TTL match the source ($got); with TTL: $(volatile "$2") (source now $(volatile "$src"))"
  else
    echo "    $1: keys without TTL DIFFER: got $got, source $want"
  fi
}

if [ "$only" = all ] || [ "$only" = sync ]; then
  echo
  echo "== 1. full sync: REPLICAOF vs redis-migrate sync --once (best of $runs)"
  for r in $(seq "$runs"); do
    start rep
    t0=$(now)
    "$cli" -p "$port" replicaof 127.0.0.1 "$src" >/dev/null
    deadline=$((SECONDS + 300))
    until [ "$(field "$port" master_link_status)" = up ] &&
      [ "$(field "$port" master_sync_in_progress)" = 0 ]; do
      [ $SECONDS -lt $deadline ] || { echo "REPLICAOF timed out" >&2; exit 1; }
      sleep 0.02
    done
    t_rep=$(secs "$t0" "$(now)")
    check replica "$port"
    stop "$pid"
    start dst
    t0=$(now)
    timeout 300 "$bin" sync --from "redis://127.0.0.1:$src" --to "redis://127.0.0.1:$port" \
      --once -q
    t_ours=$(secs "$t0" "$(now)")
    check redis-migrate "$port"
    stop "$pid"
    echo "  run $r: REPLICAOF $t_rep s, redis-migrate sync --once $t_ours s, ratio $(python3 -c "print(f'{$t_ours / $t_rep:.2f}')")"
  done
fi

if [ "$only" = all ] || [ "$only" = import ]; then
  echo
  echo "== 2. import: rdb --format protocol | redis-cli --pipe vs redis-migrate import (best of $runs)"
  for r in $(seq "$runs"); do
    t_peer=n/a
    if [ -n "$peer" ]; then
      start dst
      t0=$(now)
      timeout 600 "$peer" --format protocol "$dataset" | timeout 600 "$cli" -p "$port" --pipe \
        >"$tmp/pipe.log" 2>&1 || echo "    peer pipe failed: $(tail -n 3 "$tmp/pipe.log")"
      t_peer=$(secs "$t0" "$(now)")
      echo "    peer: $(tail -n 1 "$tmp/pipe.log" | tr -d '\r')"
      check "rdb|redis-cli" "$port"
      echo "    rdb|redis-cli streams: $(streams "$port") (source now $(streams "$src"))"
      stop "$pid"
    fi
    start dst
    t0=$(now)
    timeout 300 "$bin" import "$dataset" --to "redis://127.0.0.1:$port" -q
    t_ours=$(secs "$t0" "$(now)")
    check redis-migrate "$port"
    echo "    redis-migrate streams: $(streams "$port") (source now $(streams "$src"))"
    stop "$pid"
    ratio=n/a
    [ "$t_peer" = n/a ] || ratio=$(python3 -c "print(f'{$t_peer / $t_ours:.2f}')")
    echo "  run $r: rdb|redis-cli --pipe $t_peer s, redis-migrate import $t_ours s, speed-up $ratio"
  done
fi

if [ "$only" = all ] || [ "$only" = lag ]; then
  echo
  echo "== 3. incremental lag under redis-benchmark -P 16 -t set,lpush,incr -n $load_n -r 100000"
  for r in $(seq "$runs"); do
    start dst
    dst=$port
    dst_pid=$pid
    mkdir -p "$tmp/lag$r"
    timeout 900 "$bin" sync --from "redis://127.0.0.1:$src" --to "redis://127.0.0.1:$dst" \
      --progress-interval 0.05 \
      2> >(python3 benches/lag.py record "$src" "$tmp/lag$r") &
    sync_pid=$!
    pids+=("$sync_pid")
    deadline=$((SECONDS + 300))
    until grep -q 'incremental: ' "$tmp/lag$r/progress.log" 2>/dev/null; do
      [ $SECONDS -lt $deadline ] || { echo "sync did not reach the incremental phase" >&2; exit 1; }
      sleep 0.1
    done
    sleep 1
    off0=$(field "$src" master_repl_offset)
    t0=$(now)
    timeout 600 "$bench" -h 127.0.0.1 -p "$src" -P 16 -t set,lpush,incr -n "$load_n" \
      -r 100000 -q | tr '\r' '\n' | grep -v '^$' | grep 'requests per second' | sed 's/^/    /'
    t1=$(now)
    target_off=$(field "$src" master_repl_offset)
    deadline=$((SECONDS + 300))
    until [ "$(tail -n 1 "$tmp/lag$r/applied.tsv" | cut -f2)" -ge "$target_off" ] 2>/dev/null; do
      [ $SECONDS -lt $deadline ] || { echo "sync did not catch up" >&2; break; }
      sleep 0.05
    done
    t_catch=$(secs "$t1" "$(now)")
    kill -INT "$sync_pid"
    wait "$sync_pid" || true
    sleep 0.5
    check "after the load" "$dst"
    echo "    load $(secs "$t0" "$t1") s, source offset +$((target_off - off0)) bytes; caught up $t_catch s after the load ended"
    echo "  run $r: $(python3 benches/lag.py stats "$tmp/lag$r" "$t0" "$t1")"
    stop "$dst_pid"
  done
fi

# CPU seconds (user + system) a process has used so far.
cpu() { python3 -c "import os; f=open('/proc/$1/stat').read().rsplit(')',1)[1].split(); print(f'{(int(f[11])+int(f[12]))/os.sysconf(\"SC_CLK_TCK\"):.2f}')"; }

if [ "$only" = ckpt ]; then
  echo
  echo "== 4. checkpoint cost: redis-benchmark -P 32 -t set,incr,lpush -n $load_n, sync with and without --no-checkpoint (alternated, $runs runs each)"
  for r in $(seq "$runs"); do
    for mode in checkpoint no-checkpoint; do
      start src
      src=$port
      src_pid=$pid
      start dst
      dst=$port
      dst_pid=$pid
      extra=()
      [ "$mode" = checkpoint ] || extra=(--no-checkpoint)
      out=$tmp/ckpt-$mode-$r
      mkdir -p "$out"
      timeout 900 "$bin" sync --from "redis://127.0.0.1:$src" --to "redis://127.0.0.1:$dst" \
        --progress-interval 0.05 "${extra[@]}" \
        2> >(python3 benches/lag.py record "$src" "$out") &
      sync_pid=$!
      pids+=("$sync_pid")
      deadline=$((SECONDS + 60))
      until grep -q 'incremental: ' "$out/progress.log" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "sync did not reach the incremental phase" >&2; exit 1; }
        sleep 0.1
      done
      # `timeout` runs redis-migrate as its child.
      tool_pid=$(pgrep -P "$sync_pid" -x redis-migrate || echo "$sync_pid")
      cpu0=$(cpu "$tool_pid")
      tcpu0=$(cpu "$dst_pid")
      t0=$(now)
      rps=$(timeout 600 "$bench" -h 127.0.0.1 -p "$src" -P 32 -t set,incr,lpush -n "$load_n" \
        -r 100000 -q | tr '\r' '\n' | grep 'requests per second' | sed 's/ requests per second.*//' | tr '\n' ' ')
      t1=$(now)
      target_off=$(field "$src" master_repl_offset)
      deadline=$((SECONDS + 300))
      until [ "$(tail -n 1 "$out/applied.tsv" | cut -f2)" -ge "$target_off" ] 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || { echo "sync did not catch up" >&2; break; }
        sleep 0.01
      done
      t_catch=$(secs "$t1" "$(now)")
      tool_cpu=$(python3 -c "print(f'{$(cpu "$tool_pid") - $cpu0:.2f}')")
      target_cpu=$(python3 -c "print(f'{$(cpu "$dst_pid") - $tcpu0:.2f}')")
      kill -INT "$sync_pid"
      wait "$sync_pid" || true
      echo "  run $r $mode: load $(secs "$t0" "$t1") s ($rps), caught up $t_catch s after it, tool CPU $tool_cpu s, target CPU $target_cpu s; $(python3 benches/lag.py stats "$out" "$t0" "$t1")"
      stop "$dst_pid"
      stop "$src_pid"
    done
  done
fi
