#!/usr/bin/env bash
# Where one scenario's server CPU goes: runs the scenario (the suite's load driver, 16 in
# flight, SQLite) and, during a window of its measured phase, reads the server process with
# perf: counts per operation (CPU, context switches, SQLite statement steps) and a sampled
# profile with call stacks, folded into categories (the RS256 signature, thread hand-offs,
# SQLite, sqlx, sea-orm, HTTP, ...). Needs Linux perf (Debian: linux-perf) and root, or
# perf_event_paranoid <= 1; the step count needs uprobes (perf probe). Details: benches/README.md.
#
# Usage: bash benches/profile.sh SCENARIO [SECONDS]      (SCENARIO as in the suite; SECONDS: 6)
set -euo pipefail
scenario=${1:?usage: bash benches/profile.sh SCENARIO [SECONDS]}
window=${2:-6}
source "$(dirname "$0")/engine.sh"
command -v perf >/dev/null || { echo "perf is not installed (Debian: apt-get install linux-perf)" >&2; exit 2; }

cargo build -q --release --locked
build_driver 2>/dev/null
binary="$CARGO_TARGET_DIR/release/authbridge"
work=$(mktemp -d)
trap 'perf probe -q -d probe_authbridge:statement_step 2>/dev/null || true; rm -rf "$work"; drop_scratch_databases' EXIT

# A uprobe on sqlite3_step counts the statement steps (one per row and one at the end).
step_event=""
perf probe -q -d probe_authbridge:statement_step 2>/dev/null || true
if perf probe -q -x "$binary" --add statement_step=sqlite3_step 2>/dev/null; then
  step_event=",probe_authbridge:statement_step"
fi

# The measured phase starts after the driver's preparation: the windows (counts, then samples)
# begin 9 s in and end before the run does. The driver runs in a process group of its own: the
# signal that stops its server must not reach this script.
export -f run_on drop_scratch_databases
export POSTGRES_URL
setsid bash -c 'run_on sqlite profile "$@"' run_on scenario "$scenario" --concurrency 16 \
  --duration $((2 * window + 12)) >"$work/load.txt" 2>&1 &
driver=$!
server=""
for _ in $(seq 1 120); do
  server=$(pgrep -n -f "^$binary serve" || true)
  [ -n "$server" ] && break
  sleep 0.5
done
[ -n "$server" ] || { echo "the server did not start" >&2; exit 1; }
sleep 9
perf stat -x, -e "task-clock,context-switches$step_event" -p "$server" -- sleep "$window" 2>"$work/stat.txt"
perf record -q -F 999 --call-graph dwarf,16384 -p "$server" -o "$work/perf.data" -- sleep "$window" 2>/dev/null
wait "$driver"
grep -E '^[a-z]+ c=' "$work/load.txt" || cat "$work/load.txt"
rate=$(grep -E '^  [a-z]+ +ok' "$work/load.txt" | head -1 | grep -oE '[0-9.]+/s' | tr -d '/s')
python3 "$(dirname "$0")/profile.py" "$work/perf.data" "$work/stat.txt" "$rate" "$window"
