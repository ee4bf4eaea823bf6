#!/usr/bin/env bash
# `redis-migrate rdb stats` and `rdb dump --format resp` against the `rdb` crate 0.4, in the
# same run (issue 11). Each contender runs as its own process under GNU time; RUNS rounds
# (default 5) each run every contender once, in turn (round-robin, so that a drift of a
# shared machine touches all alike), and the best wall and best CPU (user + sys) time of each
# are kept. Output goes to /dev/null for every contender.
#
# Env: DATASET (default /work/bench-data/bench-redis-7.0.rdb: testkit's `dataset bench
# redis-7.0`), RUNS (5), PEER_RDB (the `rdb` 0.4 binary: `cargo install rdb --version 0.4.0`),
# OLD (optional: another redis-migrate binary to compare, e.g. a build of an older commit),
# BIN (optional: the redis-migrate binary to measure, e.g. a copy taken before editing the
# sources again; default: this checkout's release build, built first).
set -euo pipefail
cd "$(dirname "$0")/.."
runs=${RUNS:-5}
file=${DATASET:-/work/bench-data/bench-redis-7.0.rdb}
peer=${PEER_RDB:-$(command -v rdb)}
if [ -n "${BIN:-}" ]; then
  cargo build --quiet --release -p benches --bin rdb-compare
  bin=$BIN
else
  cargo build --quiet --release -p migrate-cli --bin redis-migrate -p benches --bin rdb-compare
  bin=${CARGO_TARGET_DIR:-target}/release/redis-migrate
fi
cmp=${CARGO_TARGET_DIR:-target}/release/rdb-compare
names=("redis-migrate rdb stats" "rdb-parser Visitor, counting (rdb-compare visit)" "rdb crate decoder, no output (rdb-compare rdb-crate)"
       "redis-migrate rdb dump --format resp" "rdb --format protocol (rdb crate CLI)")
cmds=("$bin rdb stats $file" "$cmp visit $file" "$cmp rdb-crate $file"
      "$bin rdb dump --format resp -q $file" "$peer --format protocol $file")
if [ -n "${OLD:-}" ]; then
  names+=("previous redis-migrate rdb stats" "previous redis-migrate rdb dump --format resp")
  cmds+=("$OLD rdb stats $file" "$OLD rdb dump --format resp -q $file")
fi
declare -a wall cpu
tfile=$(mktemp)
trap 'rm -f "$tfile"' EXIT
for ((r = 1; r <= runs; r++)); do
  for i in "${!cmds[@]}"; do
    /usr/bin/time -o "$tfile" -f "%e %U %S %M" ${cmds[$i]} > /dev/null 2>/dev/null
    read -r w u s m < "$tfile"
    c=$(echo "$u + $s" | bc)
    echo "round $r: ${names[$i]}: wall $w s, cpu $c s, rss $m KiB" >&2
    if [ -z "${wall[$i]:-}" ] || (( $(echo "$w < ${wall[$i]}" | bc) )); then wall[$i]=$w; fi
    if [ -z "${cpu[$i]:-}" ] || (( $(echo "$c < ${cpu[$i]}" | bc) )); then cpu[$i]=$c; fi
  done
done
echo "| job | best wall | best CPU (user+sys) |"
echo "|---|---|---|"
for i in "${!cmds[@]}"; do echo "| ${names[$i]} | ${wall[$i]} s | ${cpu[$i]} s |"; done
echo
echo "stats vs rdb crate decoder: wall $(echo "scale=2; ${wall[2]} / ${wall[0]}" | bc)x, cpu $(echo "scale=2; ${cpu[2]} / ${cpu[0]}" | bc)x"
echo "dump resp vs rdb --format protocol: wall $(echo "scale=2; ${wall[4]} / ${wall[3]}" | bc)x, cpu $(echo "scale=2; ${cpu[4]} / ${cpu[3]}" | bc)x"
