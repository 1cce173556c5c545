#!/usr/bin/env bash
# kill -9 under load: logins and refreshes against the release binary, SIGKILL mid-load, a
# restart on the same database, and every refresh token a client held at the kill presented
# again (it must work: never rotated, or rotated with the answer lost and handed out again by
# the grace window). KILLS rounds per engine on one database. Exits 1 if a token was lost or
# anything answered 5xx. Details: benches/README.md.
# Usage: bash benches/crash.sh [sqlite|postgres|both] [KILLS]        (default: both 5)
# Extra driver options (see `cargo bench --bench load -- crash --help`) in $CRASH_OPTIONS.
set -euo pipefail
source "$(dirname "$0")/engine.sh"
engines=${1:-both}
kills=${2:-5}
[ "$engines" = both ] && engines="sqlite postgres"
build_driver
status=0
for engine in $engines; do
  # shellcheck disable=SC2086
  run_on "$engine" crash crash --kills "$kills" ${CRASH_OPTIONS:-} || status=1
done
exit $status
