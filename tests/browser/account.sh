#!/usr/bin/env bash
# The connected-apps page in headless Chromium: starts authbridge in development mode with
# [account] on and an admin token (for the resource server the token exchange needs), then runs
# account-flow.mjs (two apps connected, sign-in through the dev upstream, one app disconnected
# and shown dead at refresh and exchange while the other works, axe-core on every page).
# Usage: bash tests/browser/account.sh   (run.sh calls it; screenshots in $ARTIFACT_DIR)
# Expects chromium, `npm ci` here and the debug binary, as run.sh prepares them.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
artifacts="${ARTIFACT_DIR:-$CARGO_TARGET_DIR/browser-artifacts}"
mkdir -p "$artifacts"

work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
issuer="http://127.0.0.1:$port"
admin_token="adm_browser_$(python3 -c 'import secrets; print(secrets.token_urlsafe(24))')"
admin_hash=$(printf '%s' "$admin_token" | sha256sum | cut -d' ' -f1)
resource="http://localhost:3000/mcp"
cat >"$work/authbridge.toml" <<TOML
[account]
enabled = true

[[admin.tokens]]
name = "browser-test"
sha256 = "$admin_hash"
TOML
AUTHBRIDGE_SERVER__LISTEN="127.0.0.1:$port" AUTHBRIDGE_DATA_DIR="$work/data" AUTHBRIDGE_LOG__LEVEL=warn \
  "$CARGO_TARGET_DIR/debug/authbridge" --config "$work/authbridge.toml" serve >"$work/stdout" 2>"$work/stderr" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done
curl -fs "$issuer/readyz" >/dev/null || { echo "authbridge did not start:" >&2; cat "$work/stderr" >&2; exit 1; }

if ! result=$(cd "$here" && node account-flow.mjs "$issuer" "$admin_token" "$resource" "$artifacts"); then
  echo "account-flow failed; the server's log:" >&2
  cat "$work/stderr" >&2
  exit 1
fi
echo "$result"
echo "browser: connected-apps page: sign-in, disconnect, axe-core clean on every page; screenshots written"
