#!/usr/bin/env bash
# The main job on a bundled example, from a fresh machine.
#
# Until the `redis-migrate` command can copy data, this demonstrates the foundation:
# it installs the four servers of the test matrix, starts each on a free loopback port,
# writes 1000 keys, saves, and prints the RDB format each one wrote.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-servers.sh
cargo run --quiet --release -p testkit --example matrix
