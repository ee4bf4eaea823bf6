#!/usr/bin/env bash
# Redis Cluster benchmark of `redis-migrate` (issue 13, "Bench"): a 3-master Redis 7.0
# source cluster → a 3-master Redis 7.0 target cluster, next to three native replicas of the
# source masters in the same run. Results go to stdout; benches/README.md "Redis Cluster"
# holds a run.
#
#  0. the dataset is imported into the source cluster (`redis-migrate import FILE --to
#     <node> --map-db 1=0 --map-db 2=0`: a cluster has db 0 only, and the bench dataset's
#     key names are unique over its 3 dbs).
#  1. full sync: three empty standalone servers `REPLICAOF` one source master each (diskless
#     master, delay 0), timed until all three have master_link_status:up and
#     master_sync_in_progress:0; then `redis-migrate sync --once --from <source node> --to
#     <target node>` into the empty target cluster (FLUSHALL on each target master between
#     runs): wall time and the tool's CPU (user + sys). Key counts: DBSIZE summed per side.
#  2. incremental lag: `redis-migrate sync --metrics-addr` (synced first) and three synced
#     native replicas while `redis-benchmark --cluster -P 16 -t set,incr,lpush` writes to
#     all shards. Every 20 ms each source master's master_repl_offset, each replica's
#     offset and the tool's per-shard applied offset (/metrics) are sampled
#     (benches/cluster_lag.py): lag p50/p99 in bytes and time. After the burst a marker key
#     is written to each source master; the time until the target cluster, and until each
#     replica, has it. CPU during the load: the tool's (/proc), the target masters' and the
#     replicas' (INFO cpu deltas summed).
#
# Env: DATASET (default /work/bench-data/bench-redis-7.0.rdb, else made with testkit's
# `dataset bench redis-7.0`), RUNS (2), REDIS_SERVER (/usr/bin/redis-server), LOAD_N
# (requests per redis-benchmark test, 1000000), ONLY (sync|lag: one part), SYNC_ARGS (more
# `redis-migrate sync` arguments, e.g. "--max-full-syncs 3").
# Servers run on loopback in a temporary directory and are killed at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

runs=${RUNS:-2}
server=${REDIS_SERVER:-/usr/bin/redis-server}
cli=$(command -v redis-cli)
bench=$(command -v redis-benchmark)
load_n=${LOAD_N:-1000000}
only=${ONLY:-all}
target_dir=${CARGO_TARGET_DIR:-$root/target}
read -r -a sync_args <<<"${SYNC_ARGS:-}"

echo "== building redis-migrate (release)"
cargo build --quiet --release -p migrate-cli --bin redis-migrate
bin=$target_dir/release/redis-migrate

dataset=${DATASET:-/work/bench-data/bench-redis-7.0.rdb}
if [ ! -f "$dataset" ]; then
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

# A free port whose cluster bus port (+10000) is free too.
free_port() {
  python3 -c '
import random, socket
while True:
    p = random.randint(20000, 45000)
    try:
        for q in (p, p + 10000):
            s = socket.socket(); s.bind(("127.0.0.1", q)); s.close()
        print(p); break
    except OSError:
        pass'
}
now() { date +%s.%N; }
secs() { python3 -c "print(f'{$2 - $1:.2f}')"; }
field() { "$cli" -p "$1" info "$2" | tr -d '\r' | sed -n "s/^$3://p"; }

# start NAME [config...]: starts a Redis in $tmp/NAME, sets $port and $pid.
start() {
  local name=$1 dir=$tmp/$1
  shift
  rm -rf "$dir"
  mkdir -p "$dir"
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

# cluster NAME: starts 3 cluster-enabled masters (slots 0-5460, 5461-10922, 10923-16383,
# own config epochs, joined by CLUSTER MEET); sets the array named NAME to their ports and
# NAME_pids to their pids; returns once every node says cluster_state:ok with 3 masters.
cluster() {
  local name=$1 i ports=() cpids=()
  local ranges=("0 5460" "5461 10922" "10923 16383")
  for i in 0 1 2; do
    start "$name$i" --cluster-enabled yes --cluster-config-file nodes.conf \
      --cluster-node-timeout 2000
    ports+=("$port")
    cpids+=("$pid")
    "$cli" -p "$port" cluster set-config-epoch $((i + 1)) >/dev/null
    # shellcheck disable=SC2086
    "$cli" -p "$port" cluster addslotsrange ${ranges[$i]} >/dev/null
  done
  for i in 1 2; do "$cli" -p "${ports[0]}" cluster meet 127.0.0.1 "${ports[$i]}" >/dev/null; done
  local deadline=$((SECONDS + 60)) ok info
  while :; do
    ok=1
    for i in 0 1 2; do
      info=$("$cli" -p "${ports[$i]}" cluster info | tr -d '\r')
      grep -qx 'cluster_state:ok' <<<"$info" && grep -qx 'cluster_size:3' <<<"$info" &&
        grep -qx 'cluster_known_nodes:3' <<<"$info" || ok=0
    done
    [ $ok = 1 ] && break
    [ $SECONDS -lt $deadline ] || { echo "bench: cluster $name did not form" >&2; exit 1; }
    sleep 0.1
  done
  eval "$name=(${ports[*]})"
  eval "${name}_pids=(${cpids[*]})"
}
dbsize_sum() { # dbsize_sum PORT...: DBSIZE summed
  local n=0 p
  for p in "$@"; do n=$((n + $("$cli" -p "$p" dbsize))); done
  echo "$n"
}
# The tool's checkpoint keys (__redis-migrate:*) on PORT...
ckpt_keys() {
  local p
  for p in "$@"; do "$cli" -p "$p" --scan --pattern '__redis-migrate:*'; done | wc -l
}
# Keys without a TTL, summed, checkpoint keys (no TTL) left out: keys and expires from the
# same INFO reply, so exact (keys with a TTL expire while we run).
persistent_sum() {
  local n=0 p k e
  for p in "$@"; do
    read -r k e < <("$cli" -p "$p" info keyspace | tr -d '\r' |
      sed -n 's/^db0:keys=\([0-9]*\),expires=\([0-9]*\).*/\1 \2/p')
    n=$((n + ${k:-0} - ${e:-0} - $(ckpt_keys "$p")))
  done
  echo "$n"
}
check() { # check WHAT PORT...: keys without TTL against the source cluster's
  local what=$1 got want
  shift
  got=$(persistent_sum "$@")
  want=$(persistent_sum "${src[@]}")
  if [ "$got" = "$want" ]; then
    echo "    $what: $got keys without TTL, as the source; all keys: $(dbsize_sum "$@") (source now $(dbsize_sum "${src[@]}")), of them checkpoint keys: $(ckpt_keys "$@")"
  else
    echo "    $what: keys without TTL DIFFER: got $got, source $want"
  fi
}
csv() { local IFS=,; echo "$*"; }
flush() { local p; for p in "$@"; do "$cli" -p "$p" flushall >/dev/null; done; }
# CPU seconds (user + system) a process has used so far.
cpu() { python3 -c "import os; f=open('/proc/$1/stat').read().rsplit(')',1)[1].split(); print(f'{(int(f[11])+int(f[12]))/os.sysconf(\"SC_CLK_TCK\"):.2f}')"; }
# CPU seconds (used_cpu_user + used_cpu_sys from INFO cpu) summed over PORT...
server_cpu() {
  local p
  for p in "$@"; do
    "$cli" -p "$p" info cpu | tr -d '\r' | sed -n 's/^used_cpu_\(user\|sys\):\(.*\)/\2/p'
  done | paste -sd+ | bc
}
# replicas: starts three standalone servers replicating the source masters (ports in
# $reps, pids in $rep_pids), returns once all three are synced.
replicas() {
  local i
  reps=()
  rep_pids=()
  for i in 0 1 2; do
    start "rep$i"
    reps+=("$port")
    rep_pids+=("$pid")
  done
  for i in 0 1 2; do "$cli" -p "${reps[$i]}" replicaof 127.0.0.1 "${src[$i]}" >/dev/null; done
  local deadline=$((SECONDS + 600)) ok
  while :; do
    ok=1
    for i in 0 1 2; do
      [ "$(field "${reps[$i]}" replication master_link_status)" = up ] &&
        [ "$(field "${reps[$i]}" replication master_sync_in_progress)" = 0 ] || ok=0
    done
    [ $ok = 1 ] && break
    [ $SECONDS -lt $deadline ] || { echo "bench: REPLICAOF timed out" >&2; exit 1; }
    sleep 0.02
  done
}
stop_replicas() { local p; for p in "${rep_pids[@]}"; do stop "$p"; done; }

echo "machine: $(nproc) cores, load $(cut -d' ' -f1-3 /proc/loadavg); $($server --version | cut -d' ' -f1-3)"
echo "dataset: $dataset ($(stat -c %s "$dataset") bytes); sync arguments: ${sync_args[*]:-none}"
cluster src
cluster dst
echo "source cluster ${src[*]}, target cluster ${dst[*]}"
t0=$(now)
"$bin" import "$dataset" --to "redis://127.0.0.1:${src[0]}" --map-db 1=0 --map-db 2=0 \
  --no-checkpoint -q
echo "imported into the source cluster in $(secs "$t0" "$(now)") s: keys per master $(for p in "${src[@]}"; do printf '%s ' "$("$cli" -p "$p" dbsize)"; done)"

if [ "$only" = all ] || [ "$only" = sync ]; then
  echo
  echo "== 1. full sync, 3 shards: 3 × REPLICAOF vs redis-migrate sync --once ($runs runs)"
  for r in $(seq "$runs"); do
    t0=$(now)
    replicas
    t_rep=$(secs "$t0" "$(now)")
    rep_cpu=$(printf %.2f "$(server_cpu "${reps[@]}")")
    check replicas "${reps[@]}"
    stop_replicas
    flush "${dst[@]}"
    t0=$(now)
    /usr/bin/time -f '%U %S' -o "$tmp/time" timeout 600 "$bin" sync \
      --from "redis://127.0.0.1:${src[0]}" --to "redis://127.0.0.1:${dst[0]}" --once -q "${sync_args[@]}"
    t_ours=$(secs "$t0" "$(now)")
    ours_cpu=$(awk '{printf "%.2f", $1 + $2}' "$tmp/time")
    check redis-migrate "${dst[@]}"
    echo "  run $r: 3 × REPLICAOF $t_rep s (replicas' CPU $rep_cpu s), redis-migrate sync --once $t_ours s (CPU $ours_cpu s), ratio $(python3 -c "print(f'{$t_ours / $t_rep:.2f}')")"
  done
fi

if [ "$only" = all ] || [ "$only" = lag ]; then
  echo
  echo "== 2. incremental lag under redis-benchmark --cluster -P 16 -t set,incr,lpush -n $load_n -r 100000 ($runs runs)"
  # One key per source master for the marker: a hash tag whose slot that master serves.
  markers=()
  for lo in 0 5461 10923; do
    hi=$((lo == 0 ? 5460 : lo == 5461 ? 10922 : 16383))
    for n in $(seq 1000); do
      s=$("$cli" -p "${src[0]}" cluster keyslot "bench:marker:{$n}")
      if [ "$s" -ge "$lo" ] && [ "$s" -le "$hi" ]; then
        markers+=("bench:marker:{$n}")
        break
      fi
    done
  done
  for r in $(seq "$runs"); do
    flush "${dst[@]}"
    replicas
    out=$tmp/lag$r
    mkdir -p "$out"
    mport=$(free_port)
    timeout 1800 "$bin" sync --from "redis://127.0.0.1:${src[0]}" --to "redis://127.0.0.1:${dst[0]}" \
      --metrics-addr "127.0.0.1:$mport" --progress-interval 0.2 "${sync_args[@]}" 2>"$out/progress.log" &
    sync_pid=$!
    pids+=("$sync_pid")
    deadline=$((SECONDS + 600))
    until grep -q 'incremental: .* 3/3 shards synced' "$out/progress.log" 2>/dev/null; do
      [ $SECONDS -lt $deadline ] || { echo "bench: sync did not reach the incremental phase" >&2; tail -n 5 "$out/progress.log" >&2; exit 1; }
      kill -0 "$sync_pid" 2>/dev/null || { echo "bench: sync exited" >&2; tail -n 20 "$out/progress.log" >&2; exit 1; }
      sleep 0.1
    done
    sleep 1
    tool_pid=$(pgrep -P "$sync_pid" -x redis-migrate || echo "$sync_pid")
    python3 benches/cluster_lag.py sample "$out" "127.0.0.1:$mport" \
      "s0=${src[0]}:${reps[0]},s5461=${src[1]}:${reps[1]},s10923=${src[2]}:${reps[2]}" &
    sampler=$!
    pids+=("$sampler")
    cpu0=$(cpu "$tool_pid")
    tcpu0=$(server_cpu "${dst[@]}")
    rcpu0=$(server_cpu "${reps[@]}")
    scpu0=$(server_cpu "${src[@]}")
    t0=$(now)
    timeout 900 "$bench" --cluster -h 127.0.0.1 -p "${src[0]}" -P 16 -t set,incr,lpush \
      -n "$load_n" -r 100000 -q | tr '\r' '\n' | grep 'requests per second' | sed 's/^/    /'
    t1=$(now)
    seen=$(python3 benches/cluster_lag.py markers "$r" "$(csv "${src[@]}")" "$(csv "${dst[@]}")" \
      "$(csv "${reps[@]}")" "$(csv "${markers[@]}")")
    tool_cpu=$(python3 -c "print(f'{$(cpu "$tool_pid") - $cpu0:.2f}')")
    target_cpu=$(python3 -c "print(f'{$(server_cpu "${dst[@]}") - $tcpu0:.2f}')")
    rep_cpu=$(python3 -c "print(f'{$(server_cpu "${reps[@]}") - $rcpu0:.2f}')")
    src_cpu=$(python3 -c "print(f'{$(server_cpu "${src[@]}") - $scpu0:.2f}')")
    touch "$out/stop"
    wait "$sampler" || true
    kill -INT "$sync_pid"
    wait "$sync_pid" || true
    check "target after the load" "${dst[@]}"
    check "replicas after the load" "${reps[@]}"
    echo "    load $(secs "$t0" "$t1") s; the markers written after it seen (s after the write): $seen"
    echo "    CPU during the load and catch-up: tool $tool_cpu s, target masters $target_cpu s, replicas $rep_cpu s, source masters $src_cpu s"
    echo "  run $r: $(python3 benches/cluster_lag.py stats "$out" "$t0" "$t1")"
    stop_replicas
  done
fi
