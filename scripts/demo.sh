#!/usr/bin/env bash
# The main job on a bundled example, from a fresh machine: a downgrade from Valkey 9.1 to
# Redis 6.2 with `redis-migrate`.
#
#  1. installs the test servers (scripts/install-test-servers.sh) and builds redis-migrate;
#  2. makes the example: an RDB file with every type and encoding, TTLs, 3 dbs and streams
#     with consumer groups (testkit's `dataset` example, written by Valkey 9.1);
#  3. `redis-migrate import` loads it into a Valkey 9.1 server (the "source");
#  4. `redis-migrate sync --once` copies that live server over replication (PSYNC) into a
#     Redis 6.2 server, choosing RESTORE or commands per key, and prints the JSON report;
#  5. `redis-migrate sync` keeps a third server (Valkey 8.1) in sync while writes happen on
#     the source, then stops gracefully on SIGINT, like Ctrl-C, and prints its summary.
# Servers run on free loopback ports in a temporary directory and are stopped at the end.
set -euo pipefail
cd "$(dirname "$0")/.."
root=$(pwd)

bash scripts/install-test-servers.sh
servers=${TEST_SERVERS_DIR:-$root/.test-servers}
target_dir=${CARGO_TARGET_DIR:-$root/target}
echo "== building redis-migrate (release)"
cargo build --quiet --release -p migrate-cli --bin redis-migrate -p testkit --example dataset
bin=$target_dir/release/redis-migrate
cli=$(command -v redis-cli)

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

# start NAME BINARY: starts a server, sets $port.
start() {
  local name=$1 server=$2
  port=$(free_port)
  mkdir -p "$tmp/$name"
  "$server" --port "$port" --bind 127.0.0.1 --dir "$tmp/$name" --save "" --appendonly no \
    --repl-diskless-sync-delay 0 --logfile "$tmp/$name/server.log" </dev/null >/dev/null 2>&1 &
  pids+=($!)
  for _ in $(seq 100); do
    "$cli" -p "$port" ping >/dev/null 2>&1 && return 0
    sleep 0.05
  done
  echo "demo: $name did not start; its log:" >&2
  cat "$tmp/$name/server.log" >&2
  exit 1
}

keyspace() { "$cli" -p "$1" info keyspace | grep '^db' | tr -d '\r' | tr '\n' ' '; echo; }

echo "== making the example RDB (every type and encoding, TTLs, 3 dbs, streams)"
"$target_dir/release/examples/dataset" small valkey-9.1 "$tmp/example.rdb" >"$tmp/example.txt"
head -n 2 "$tmp/example.txt"

start source "$servers/valkey-9.1.2/valkey-server"; src=$port
start target "$servers/redis-6.2.5/redis-server"; dst=$port
start live "$servers/valkey-8.1.8/valkey-server"; live=$port
echo "source Valkey 9.1 on $src, target Redis 6.2 on $dst, live copy Valkey 8.1 on $live"

echo
echo "== redis-migrate import example.rdb --to redis://127.0.0.1:$src"
"$bin" import "$tmp/example.rdb" --to "redis://127.0.0.1:$src"
echo "source keyspace: $(keyspace "$src")"

echo
echo "== redis-migrate sync --from redis://127.0.0.1:$src --to redis://127.0.0.1:$dst --once --report report.json"
"$bin" sync --from "redis://127.0.0.1:$src" --to "redis://127.0.0.1:$dst" --once \
  --report "$tmp/report.json"
echo "target keyspace: $(keyspace "$dst")"
echo "report:"
cat "$tmp/report.json"

echo
echo "== redis-migrate sync (continuous) into Valkey 8.1, with writes on the source, then Ctrl-C"
"$bin" sync --from "redis://127.0.0.1:$src" --to "redis://127.0.0.1:$live" \
  --report "$tmp/live.json" 2>"$tmp/live.log" &
sync_pid=$!
for _ in $(seq 200); do
  [ "$("$cli" -p "$live" dbsize)" -ge 200 ] 2>/dev/null && break
  sleep 0.05
done
for i in $(seq 1 100); do
  echo "INCR demo:counter"
  echo "HSET demo:hash f$((i % 10)) $i"
  echo "XADD demo:stream * n $i"
done | "$cli" -p "$src" >/dev/null
"$cli" -p "$src" eval "redis.call('INCRBY', KEYS[1], 1000) return 1" 1 demo:counter >/dev/null
for _ in $(seq 200); do
  [ "$("$cli" -p "$live" get demo:counter)" = "1100" ] && break
  sleep 0.05
done
kill -INT "$sync_pid"
wait "$sync_pid"
tail -n 1 "$tmp/live.log"
echo "demo:counter on the source: $("$cli" -p "$src" get demo:counter), on the live copy: $("$cli" -p "$live" get demo:counter)"
echo "stream length on the source: $("$cli" -p "$src" xlen demo:stream), on the live copy: $("$cli" -p "$live" xlen demo:stream)"
