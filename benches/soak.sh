#!/usr/bin/env bash
# Soak: mixed load (register 5%, login 10%, refresh 50%, token exchange 25%, revoke 10%) at a
# steady rate for DURATION seconds against the release binary, counting every 5xx (there must
# be none) and sampling the server's RSS every 30 s, with the machine's load average beside
# each sample. Exits 1 on any 5xx or a revoked token that still works. Details:
# benches/README.md.
# Usage: bash benches/soak.sh [sqlite|postgres|both] [DURATION_SECS]   (default: sqlite 600)
# Rate and workers: $SOAK_OPTIONS, e.g. "--rate 200 --concurrency 16" (default 100/s, 8).
set -euo pipefail
source "$(dirname "$0")/engine.sh"
engines=${1:-sqlite}
duration=${2:-600}
[ "$engines" = both ] && engines="sqlite postgres"
build_driver
status=0
for engine in $engines; do
  # shellcheck disable=SC2086
  run_on "$engine" soak soak --duration-secs "$duration" ${SOAK_OPTIONS:-} || status=1
done
exit $status
