# Sourced by the browser flows' scripts: `start_authbridge` starts the debug authbridge in
# development mode (the dev upstream) on a free loopback port with the configuration read from
# stdin, and sets `issuer` and `work` (its temporary folder, removed on exit with the server);
# `server_log` prints its log. Also sets `here`, `root`, `CARGO_TARGET_DIR` and `artifacts`.
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
root=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
artifacts="${ARTIFACT_DIR:-$CARGO_TARGET_DIR/browser-artifacts}"
mkdir -p "$artifacts"

start_authbridge() {
  work=$(mktemp -d)
  cat >"$work/authbridge.toml"
  local port
  port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  issuer="http://127.0.0.1:$port"
  AUTHBRIDGE_SERVER__LISTEN="127.0.0.1:$port" AUTHBRIDGE_DATA_DIR="$work/data" AUTHBRIDGE_LOG__LEVEL=warn \
    "$CARGO_TARGET_DIR/debug/authbridge" --config "$work/authbridge.toml" serve >"$work/stdout" 2>"$work/stderr" &
  server=$!
  trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
  for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
  curl -fs "$issuer/readyz" >/dev/null || { echo "authbridge did not start:" >&2; server_log; exit 1; }
}

server_log() {
  cat "$work/stderr" >&2
}

# An admin API token and its [[admin.tokens]] entry: sets `admin_token` and `admin_hash`.
new_admin_token() {
  admin_token="adm_browser_$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
  admin_hash=$(printf '%s' "$admin_token" | sha256sum | cut -d' ' -f1)
}
