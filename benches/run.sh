#!/usr/bin/env bash
# The benchmark suite: builds the release binary and the load driver, starts the server as its
# own process on a fresh database (SQLite in a temporary directory, or a scratch PostgreSQL
# database created on the server given and dropped afterwards) with a fake OwnerRez and an MCP
# backend served by the driver, and drives every scenario over HTTP. Details and the last
# figures: benches/README.md.
#
# Usage: bash benches/run.sh [--database sqlite|postgres|postgres://USER@HOST:PORT/DB]
#                            [--scenarios register,login,...] [--concurrency 16,64]
#                            [--duration 15] [--preload [small|full]]
set -euo pipefail
source "$(dirname "$0")/engine.sh"

engine=sqlite
args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --database)
      case "$2" in
        sqlite) engine=sqlite ;;
        postgres) engine=postgres ;;
        postgres://*|postgresql://*) engine=postgres; POSTGRES_URL=$2 ;;
        *) echo "--database: sqlite, postgres or a postgres:// URL" >&2; exit 2 ;;
      esac
      shift 2 ;;
    --scenarios|--concurrency|--duration)
      args+=("$1" "$2"); shift 2 ;;
    --preload)
      if [ $# -gt 1 ] && { [ "$2" = small ] || [ "$2" = full ]; }; then
        args+=("--preload=$2"); shift 2
      else
        args+=("--preload"); shift
      fi ;;
    -h|--help)
      sed -n '2,10p' "$0"; exit 0 ;;
    *) echo "unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
done

build_driver
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg); $(nproc) cores"
run_on "$engine" bench suite "${args[@]}"
