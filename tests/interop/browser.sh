#!/usr/bin/env bash
# The consent page in Debian's headless Chromium (playwright-core), against the interop
# authbridge: DCR, /authorize with the MCP server as resource, the consent page (screenshots),
# approve, the OwnerRez double's login, back to the client with code, state and iss, then the
# code exchange. Run by tests/interop/run.sh with its environment.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
chromium="${CHROMIUM_PATH:-/usr/bin/chromium}"
if [ ! -x "$chromium" ]; then
  echo "not ok - browser: $chromium is missing (apt-get install -y chromium; tests/browser/run.sh installs it)"
  exit 1
fi
[ -d "$root/tests/browser/node_modules/playwright-core" ] \
  || (cd "$root/tests/browser" && npm ci --no-audit --no-fund --loglevel=error)
artifacts="${ARTIFACT_DIR:-${CARGO_TARGET_DIR:-$root/target}/browser-artifacts}/interop"
mkdir -p "$artifacts"

redirect_uri="https://chatgpt.com/connector/oauth/interop-browser"
urlencode() { python3 -c 'import sys, urllib.parse; print(urllib.parse.quote(sys.argv[1], safe=""))' "$1"; }
json_field() { python3 -c 'import json, sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }

echo "== browser: register"
client_id=$(curl -fsS -X POST "$AUTHBRIDGE_ISSUER/register" -H 'content-type: application/json' \
  -d "{\"client_name\": \"ChatGPT (browser)\", \"redirect_uris\": [\"$redirect_uri\"], \"token_endpoint_auth_method\": \"none\"}" \
  | json_field client_id)
echo "ok - browser: registered $client_id"

echo "== browser: consent and upstream login in Chromium"
challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
authorize="$AUTHBRIDGE_ISSUER/authorize?response_type=code&client_id=$client_id&redirect_uri=$(urlencode "$redirect_uri")&code_challenge=$challenge&code_challenge_method=S256&state=interop-browser&resource=$(urlencode "$MCP_URL")"
result=$(cd "$root/tests/browser" && EXPECT_CLIENT_NAME="ChatGPT (browser)" node consent-flow.mjs "$authorize" "$redirect_uri" "$artifacts")
redirect=$(printf '%s' "$result" | json_field redirect)
code=$(python3 - "$redirect" "$AUTHBRIDGE_ISSUER" <<'PY'
import sys, urllib.parse
query = urllib.parse.parse_qs(urllib.parse.urlparse(sys.argv[1]).query)
assert query.get("state") == ["interop-browser"], sys.argv[1]
assert query.get("iss") == [sys.argv[2]], sys.argv[1]
print(query["code"][0])
PY
)
echo "ok - browser: approved in Chromium; back at the client with code, state and iss"
for shot in consent.png consent-mobile.png; do
  [ -s "$artifacts/$shot" ] && echo "ok - browser: screenshot $artifacts/$shot"
done

echo "== browser: code exchange"
access=$(curl -fsS -X POST "$AUTHBRIDGE_ISSUER/token" \
  --data-urlencode grant_type=authorization_code --data-urlencode "client_id=$client_id" \
  --data-urlencode "code=$code" --data-urlencode "redirect_uri=$redirect_uri" \
  --data-urlencode code_verifier=dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk | json_field access_token)
[ -n "$access" ] && echo "ok - browser: the code from the browser run gives an access token"
