#!/usr/bin/env bash
# Start-up and footprint of the release binary:
#   cold start to ready (process start until /readyz answers 200) with an existing database,
#   idle resident memory, and binary size.
# Usage: bash benches/startup.sh   (builds the release binary first)
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/authbridge-target}"
cargo build --release --locked --bin authbridge >/dev/null 2>&1
bin="$CARGO_TARGET_DIR/release/authbridge"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
export AUTHBRIDGE_SERVER__LISTEN="127.0.0.1:$port" AUTHBRIDGE_DATA_DIR="$work/data" AUTHBRIDGE_LOG__LEVEL=warn

# Starts the server and waits until /readyz answers; sets $pid and $ms (time to ready).
start_and_wait() {
  local started now
  started=$(date +%s%N)
  "$bin" serve >/dev/null 2>"$work/stderr" &
  pid=$!
  until curl -fs "http://127.0.0.1:$port/readyz" >/dev/null 2>&1; do sleep 0.002; done
  now=$(date +%s%N)
  ms=$(( (now - started) / 1000000 ))
}

stop() { kill -TERM "$pid"; wait "$pid" || true; }

# First start creates the database, the encryption key and the signing key.
start_and_wait; first_ms=$ms; stop
runs=()
for _ in 1 2 3 4 5; do start_and_wait; runs+=("$ms"); stop; done
start_and_wait
for _ in $(seq 1 20); do curl -fs "http://127.0.0.1:$port/jwks.json" >/dev/null; done
sleep 2
rss=$(awk '/VmRSS/ {print $2}' "/proc/$pid/status")
stop
sorted=$(printf '%s\n' "${runs[@]}" | sort -n | tr '\n' ' ')
echo "first start (fresh database, key generation): ${first_ms} ms"
echo "cold start to ready with an existing database (5 runs, sorted): ${sorted}ms"
echo "idle RSS after 20 requests: $(( rss / 1024 )) MiB (${rss} KiB)"
echo "binary size: $(stat -c %s "$bin") bytes ($(( $(stat -c %s "$bin") / 1024 / 1024 )) MiB)"
