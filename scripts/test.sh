#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs the test servers (five flavours
# and four old Redis sources; see the README)
# (scripts/install-test-servers.sh, idempotent) and runs every test of the workspace
# against them, doc tests included.
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-test-servers.sh
# Two cores: one test binary at a time, its tests on both cores.
cargo test --workspace --locked "$@"
