#!/usr/bin/env bash
# The operator console in headless Chromium: starts authbridge in development mode with
# [console] on and the admin-token sign-in form offered, then runs console-flow.mjs (an
# operator finds and disables a host's DCR client, whose next refresh gets 401 invalid_client,
# and revokes a user's grant from the user's page; axe-core on every page).
# Usage: bash tests/browser/console.sh   (run.sh calls it; screenshots in $ARTIFACT_DIR)
# Expects chromium, `npm ci` here and the debug binary, as run.sh prepares them.
set -euo pipefail
source "$(dirname "$0")/serve.sh"

new_admin_token
start_authbridge <<TOML
[console]
enabled = true
admin_token_sign_in = true

[[admin.tokens]]
name = "browser-operator"
sha256 = "$admin_hash"
TOML

if ! result=$(cd "$here" && node console-flow.mjs "$issuer" "$admin_token" "$artifacts"); then
  echo "console-flow failed; the server's log:" >&2
  server_log
  exit 1
fi
echo "$result"
echo "browser: operator console: sign-in, a DCR client found and disabled (refresh 401 invalid_client), a grant revoked, axe-core clean on every page; screenshots written"
