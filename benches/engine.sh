# Sourced by benches/crash.sh and benches/soak.sh: builds the load driver (benches/load/) and
# runs it on one engine. For PostgreSQL a scratch database named <prefix>_<pid> is created on
# the server $POSTGRES_URL (default $TEST_POSTGRES_URL, else postgres://postgres@127.0.0.1:5432/test)
# and dropped afterwards, whatever happens.

cd "$(dirname "${BASH_SOURCE[0]}")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/authbridge-target}"
POSTGRES_URL="${POSTGRES_URL:-${TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/test}}"
scratch_databases=()

drop_scratch_databases() {
  for name in "${scratch_databases[@]}"; do
    psql -q "$POSTGRES_URL" -c "DROP DATABASE IF EXISTS $name WITH (FORCE)" >/dev/null || true
  done
}
trap drop_scratch_databases EXIT

build_driver() {
  cargo bench --locked --bench load --no-run
}

# run_on ENGINE PREFIX DRIVER-ARGS...: ENGINE is sqlite or postgres.
run_on() {
  local engine=$1 prefix=$2
  shift 2
  case "$engine" in
    sqlite)
      cargo bench -q --locked --bench load -- "$@" ;;
    postgres)
      local name="${prefix}_$$"
      psql -q "$POSTGRES_URL" -c "CREATE DATABASE $name" >/dev/null
      scratch_databases+=("$name")
      cargo bench -q --locked --bench load -- --database-url "${POSTGRES_URL%/*}/$name" "$@" ;;
    *)
      echo "unknown engine $engine (sqlite or postgres)" >&2
      return 2 ;;
  esac
}
