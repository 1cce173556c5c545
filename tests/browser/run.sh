#!/usr/bin/env bash
# The consent page in a real headless Chromium: starts authbridge in development mode on a free
# loopback port, registers a client whose name contains HTML, and drives /authorize → consent
# (screenshots) → dev login → back to the client with code, state and iss.
# Usage: bash tests/browser/run.sh   (screenshots in $ARTIFACT_DIR, default target/browser-artifacts)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$root/target}"
artifacts="${ARTIFACT_DIR:-$CARGO_TARGET_DIR/browser-artifacts}"
mkdir -p "$artifacts"

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "installing Debian's chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)

(cd "$root" && cargo build --locked --bin authbridge)
work=$(mktemp -d)
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
issuer="http://127.0.0.1:$port"
AUTHBRIDGE_SERVER__LISTEN="127.0.0.1:$port" AUTHBRIDGE_DATA_DIR="$work/data" AUTHBRIDGE_LOG__LEVEL=warn \
  "$CARGO_TARGET_DIR/debug/authbridge" serve >"$work/stdout" 2>"$work/stderr" &
server=$!
trap 'kill "$server" 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do curl -fs "$issuer/readyz" >/dev/null 2>&1 && break; sleep 0.1; done

name='<b>Evil</b> & "Co" <script>alert(1)</script>'
redirect_uri="https://claude.ai/api/mcp/auth_callback"
client_id=$(curl -fs -X POST "$issuer/register" -H 'content-type: application/json' \
  -d "$(python3 -c 'import json,sys; print(json.dumps({"client_name": sys.argv[1], "redirect_uris": [sys.argv[2]], "token_endpoint_auth_method": "none"}))' "$name" "$redirect_uri")" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
authorize="$issuer/authorize?response_type=code&client_id=$client_id&redirect_uri=$(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$redirect_uri")&code_challenge=$challenge&code_challenge_method=S256&state=browser-state"

result=$(cd "$here" && EXPECT_CLIENT_NAME="$name" node consent-flow.mjs "$authorize" "$redirect_uri" "$artifacts" "$issuer")
echo "$result"
python3 - "$result" "$issuer" <<'PY'
import json, sys, urllib.parse
redirect = json.loads(sys.argv[1])["redirect"]
query = urllib.parse.parse_qs(urllib.parse.urlparse(redirect).query)
assert query.get("code", [""])[0].startswith("code_"), redirect
assert query.get("state") == ["browser-state"], redirect
assert query.get("iss") == [sys.argv[2]], redirect
print("browser: consent approved in Chromium, code, state and iss returned; screenshots written")
PY
kill "$server" 2>/dev/null || true
bash "$here/account.sh"
ls -l "$artifacts"
