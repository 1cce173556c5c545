#!/usr/bin/env bash
# The pages in a real headless Chromium (README.md here): the consent flow (consent-flow.mjs: a
# client whose name contains HTML, /authorize → consent → dev login → back to the client with
# code, state and iss; the error pages), then account.sh and console.sh. Every page is
# screenshotted at 1280 and 390 px and checked with axe-core.
# Usage: bash tests/browser/run.sh   (screenshots in $ARTIFACT_DIR, default target/browser-artifacts)
set -euo pipefail
source "$(dirname "$0")/serve.sh"

if [ ! -x "${CHROMIUM_PATH:-/usr/bin/chromium}" ]; then
  echo "installing Debian's chromium"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
fi
(cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
(cd "$root" && cargo build --locked --bin authbridge)

start_authbridge </dev/null

name='<b>Evil</b> & "Co" <script>alert(1)</script>'
redirect_uri="https://claude.ai/api/mcp/auth_callback"
client_id=$(curl -fs -X POST "$issuer/register" -H 'content-type: application/json' \
  -d "$(python3 -c 'import json,sys; print(json.dumps({"client_name": sys.argv[1], "redirect_uris": [sys.argv[2]], "token_endpoint_auth_method": "none"}))' "$name" "$redirect_uri")" \
  | python3 -c 'import json,sys; print(json.load(sys.stdin)["client_id"])')
challenge="E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
authorize="$issuer/authorize?response_type=code&client_id=$client_id&redirect_uri=$(python3 -c 'import urllib.parse,sys; print(urllib.parse.quote(sys.argv[1], safe=""))' "$redirect_uri")&code_challenge=$challenge&code_challenge_method=S256&state=browser-state"

if ! result=$(cd "$here" && EXPECT_CLIENT_NAME="$name" node consent-flow.mjs "$authorize" "$redirect_uri" "$artifacts" "$issuer"); then
  echo "consent-flow failed; the server's log:" >&2
  server_log
  exit 1
fi
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
bash "$here/console.sh"
ls -l "$artifacts"
echo "browser: every flow passed in ${SECONDS} s"
