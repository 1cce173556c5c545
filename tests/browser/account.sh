#!/usr/bin/env bash
# The connected-apps page in headless Chromium: starts authbridge in development mode with
# [account] on and an admin token (for the resource server the token exchange needs), then runs
# account-flow.mjs (two apps connected, sign-in through the dev upstream, a cross-site form
# refused, one app disconnected and shown dead at refresh and exchange while the other works,
# axe-core on every page).
# Usage: bash tests/browser/account.sh   (run.sh calls it; screenshots in $ARTIFACT_DIR)
# Expects chromium, `npm ci` here and the debug binary, as run.sh prepares them.
set -euo pipefail
source "$(dirname "$0")/serve.sh"

new_admin_token
start_authbridge <<TOML
[account]
enabled = true

[[admin.tokens]]
name = "browser-test"
sha256 = "$admin_hash"
TOML

resource="http://localhost:3000/mcp"
if ! result=$(cd "$here" && node account-flow.mjs "$issuer" "$admin_token" "$resource" "$artifacts"); then
  echo "account-flow failed; the server's log:" >&2
  server_log
  exit 1
fi
echo "$result"
echo "browser: connected-apps page: sign-in, cross-site form refused, disconnect, axe-core clean on every page; screenshots written"
