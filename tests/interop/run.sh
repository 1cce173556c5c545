#!/usr/bin/env bash
# The interop suite: real MCP client libraries against authbridge (debug build, `ownerrez`
# provider) fronting an OwnerRez test double, protecting the example MCP server, and in gateway
# mode in front of an MCP server that knows nothing of authbridge (examples/gateway-backend).
#
#   bash tests/interop/run.sh
#
# 1. installs the Node packages (npm ci in examples/mcp-server and every tests/interop/*/ with a
#    package.json) and, when tests/interop/py/requirements.txt exists, a venv in tests/interop/.venv;
# 2. builds authbridge and the OwnerRez double of the Rust tests (the `ownerrez-double` example,
#    tests/interop/ownerrez_double.rs over tests/api/ownerrez_double.rs) and starts, on free
#    loopback ports: the OwnerRez double, authbridge (a TOML file in a temp dir, secrets in the
#    environment), a confidential client for the MCP server made through the admin API and marked
#    as the resource server, the example MCP server (examples/mcp-server) with that client, and
#    a second authbridge in gateway mode (its own issuer: the other steps expect one resource)
#    in front of the gateway backend (examples/gateway-backend);
# 3. runs each client step with the contract below exported, stopping at the first failure;
# 4. stops everything it started, and prints `interop: N passed, M failed` (N counts `ok - ` lines).
#
# Contract for every step: AUTHBRIDGE_ISSUER (no trailing slash), MCP_URL (…/mcp),
# MCP_RESOURCE_METADATA_URL, OWNERREZ_DOUBLE_URL, ADMIN_TOKEN, EXPECTED_OWNERREZ_USER_ID,
# EXPECTED_OWNERREZ_NAME, GATEWAY_ISSUER, GATEWAY_SSE_MCP_URL and GATEWAY_JSON_MCP_URL (the
# gateway authbridge's issuer and its two gateway resources, whose backend answers with SSE
# streams and with JSON). Steps run from the repository root.
#
# INTEROP_KEEP=1 keeps the temp dir (logs, database) after the run.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/authbridge-target}"
export PYTHONDONTWRITEBYTECODE=1 # no __pycache__ in the work tree
started_at=$(date +%s)

say() { printf 'interop: %s\n' "$*"; }

# ---------------------------------------------------------------------------------------------
# 1. Dependencies. A stamp of the lock file's hash skips reinstalling an unchanged tree locally;
#    a fresh clone (CI) always installs.

stamp_of() { sha256sum "$@" | sha256sum | cut -d' ' -f1; }

for dir in "$root/examples/mcp-server" "$root/examples/gateway-backend" "$here"/*/; do
  dir=${dir%/}
  [ -f "$dir/package.json" ] || continue
  if [ ! -f "$dir/package-lock.json" ]; then
    say "$dir/package.json has no package-lock.json (run npm install there and commit the lock file)" >&2
    exit 1
  fi
  want=$(stamp_of "$dir/package-lock.json")
  if [ "$(cat "$dir/node_modules/.interop-stamp" 2>/dev/null || true)" != "$want" ]; then
    say "npm ci in ${dir#"$root"/}"
    (cd "$dir" && npm ci --no-audit --no-fund --loglevel=error)
    echo "$want" >"$dir/node_modules/.interop-stamp"
  fi
done

venv="$here/.venv"
requirements="$here/py/requirements.txt"
if [ -f "$requirements" ]; then
  want=$(stamp_of "$requirements")
  if [ "$(cat "$venv/.interop-stamp" 2>/dev/null || true)" != "$want" ]; then
    say "Python venv in tests/interop/.venv"
    if ! python3 -m venv "$venv" >/dev/null 2>&1; then
      # Debian splits venv (and ensurepip) into its own package.
      apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null
      rm -rf "$venv" && python3 -m venv "$venv"
    fi
    "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
    echo "$want" >"$venv/.interop-stamp"
  fi
fi

# ---------------------------------------------------------------------------------------------
# 2. The servers.

say "building authbridge and the OwnerRez double (debug)"
(cd "$root" && cargo build --locked --bin authbridge --example ownerrez-double)
authbridge_bin="$CARGO_TARGET_DIR/debug/authbridge"
double_bin="$CARGO_TARGET_DIR/debug/examples/ownerrez-double"

work=$(mktemp -d "${TMPDIR:-/tmp}/authbridge-interop.XXXXXX")
pids=()
cleanup() {
  local status=$?
  for pid in "${pids[@]}"; do kill "$pid" 2>/dev/null || true; done
  for pid in "${pids[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -9 "$pid" 2>/dev/null || true
  done
  if [ "${INTEROP_KEEP:-}" = 1 ]; then
    say "kept $work"
  else
    rm -rf "$work"
  fi
  exit "$status"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

show_logs() {
  for name in ownerrez-double authbridge mcp-server authbridge-gateway gateway-backend; do
    [ -f "$work/$name.log" ] || continue
    echo "---- last lines of the $name log ($work/$name.log)"
    tail -n 40 "$work/$name.log"
  done
}

# Waits until `curl URL` succeeds, or fails naming what did not start.
wait_for() {
  local what=$1 url=$2 pid=$3
  for _ in $(seq 1 150); do
    if curl -fsS -o /dev/null "$url" 2>/dev/null; then return 0; fi
    if ! kill -0 "$pid" 2>/dev/null; then
      say "$what exited during start-up" >&2
      show_logs >&2
      exit 1
    fi
    sleep 0.1
  done
  say "$what did not answer at $url within 15 s" >&2
  show_logs >&2
  exit 1
}

free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

random_b64() { python3 -c 'import base64,os,sys; print(base64.b64encode(os.urandom(int(sys.argv[1]))).decode())' "$1"; }
json_field() { python3 -c 'import json,sys
v = json.load(sys.stdin)
for key in sys.argv[1:]: v = v[key]
print(v)' "$@"; }

authbridge_port=$(free_port)
mcp_port=$(free_port)
backend_port=$(free_port)
backend_url="http://127.0.0.1:$backend_port"
gateway_port=$(free_port)
gateway_issuer="http://127.0.0.1:$gateway_port"
issuer="http://127.0.0.1:$authbridge_port"
mcp_public="http://127.0.0.1:$mcp_port"
mcp_url="$mcp_public/mcp"

# The OwnerRez double: picks its own port and writes it to a file.
ownerrez_client_id="c_interop"
ownerrez_client_secret="s_interop_$(random_b64 18 | tr '+/' '-_' | tr -d '=')"
"$double_bin" --port-file "$work/ownerrez.port" \
  --client-id "$ownerrez_client_id" --client-secret "$ownerrez_client_secret" \
  --redirect-uri "$issuer/upstream/callback" --redirect-uri "$gateway_issuer/upstream/callback" \
  >"$work/ownerrez-double.log" 2>&1 &
double_pid=$!
pids+=("$double_pid")
for _ in $(seq 1 100); do [ -s "$work/ownerrez.port" ] && break; sleep 0.05; done
[ -s "$work/ownerrez.port" ] || { say "the OwnerRez double did not start" >&2; show_logs >&2; exit 1; }
double_url="http://127.0.0.1:$(cat "$work/ownerrez.port")"
wait_for "the OwnerRez double" "$double_url/healthz" "$double_pid"

# authbridge, configured by a file (no secrets in it) and the environment (the secrets).
admin_token="adm_interop_$(random_b64 24 | tr '+/' '-_' | tr -d '=')"
admin_sha256=$(printf '%s' "$admin_token" | sha256sum | cut -d' ' -f1)
cat >"$work/authbridge.toml" <<EOF
data_dir = "$work/data"

[server]
listen = "127.0.0.1:$authbridge_port"
issuer = "$issuer"

[log]
level = "info"

[upstream]
provider = "ownerrez"
timeout_ms = 5000

[upstream.ownerrez]
client_id = "$ownerrez_client_id"
authorize_url = "$double_url/oauth/authorize"
token_url = "$double_url/oauth/access_token"
api_base_url = "$double_url/v2"
user_agent = "authbridge-interop (ops@example.com)"
check_user = true

[client_metadata_documents]
allow_http_loopback = true

[admin]
tokens = [{ name = "interop", sha256 = "$admin_sha256" }]

[[resources]]
uri = "$mcp_url"
name = "Example MCP server"
scopes = ["mcp"]
default_scopes = ["mcp"]
EOF
# Starts authbridge with the configuration file $work/$1.toml (secrets in the environment,
# each run its own encryption key), logging to $work/$1.log, and waits until $2/readyz answers.
start_authbridge() {
  local name=$1 issuer_url=$2 pid
  NO_COLOR=1 AUTHBRIDGE_ENCRYPTION__KEY="$(random_b64 32)" \
  AUTHBRIDGE_UPSTREAM__OWNERREZ__CLIENT_SECRET="$ownerrez_client_secret" \
    "$authbridge_bin" --config "$work/$name.toml" serve >"$work/$name.log" 2>&1 &
  pid=$!
  pids+=("$pid")
  wait_for "$name" "$issuer_url/readyz" "$pid"
}
start_authbridge authbridge "$issuer"

# The MCP server's own confidential client, marked as the resource server of its resource so
# it may use token exchange. The admin API requires a redirect URI even for a client that never
# logs anyone in; this one is never used.
admin() {
  local method=$1 path=$2 body=$3 expected=$4 answer status
  answer=$(curl -sS -w '\n%{http_code}' -X "$method" "$issuer$path" \
    -H "authorization: Bearer $admin_token" -H 'content-type: application/json' -d "$body")
  status=${answer##*$'\n'}
  answer=${answer%$'\n'*}
  if [ "$status" != "$expected" ]; then
    say "admin API $method $path answered HTTP $status, not $expected: $answer" >&2
    show_logs >&2
    exit 1
  fi
  printf '%s' "$answer"
}
created=$(admin POST /admin/v1/clients \
  '{"client_name": "Example MCP server", "redirect_uris": ["http://127.0.0.1/unused"], "token_endpoint_auth_method": "client_secret_basic"}' 201)
mcp_client_id=$(json_field client client_id <<<"$created")
mcp_client_secret=$(json_field client_secret <<<"$created")
admin PUT "/admin/v1/clients/$mcp_client_id/resource-server" "{\"resource\": \"$mcp_url\"}" 200 >/dev/null

PORT="$mcp_port" PUBLIC_URL="$mcp_public" AUTHBRIDGE_ISSUER="$issuer" \
AUTHBRIDGE_CLIENT_ID="$mcp_client_id" AUTHBRIDGE_CLIENT_SECRET="$mcp_client_secret" \
OWNERREZ_API_BASE="$double_url/v2" OWNERREZ_USER_AGENT="authbridge-example-mcp-server (interop)" \
  node "$root/examples/mcp-server/server.mjs" >"$work/mcp-server.log" 2>&1 &
mcp_pid=$!
pids+=("$mcp_pid")
wait_for "the example MCP server" "$mcp_public/.well-known/oauth-protected-resource/mcp" "$mcp_pid"

# The gateway: a second authbridge whose resources it serves itself, forwarding to the gateway
# backend, an MCP server that only knows OwnerRez tokens.
sed -e "s#^data_dir = .*#data_dir = \"$work/gateway-data\"#" \
  -e "s#^listen = .*#listen = \"127.0.0.1:$gateway_port\"#" \
  -e "s#^issuer = .*#issuer = \"$gateway_issuer\"#" \
  -e '/^\[\[resources\]\]/,$d' "$work/authbridge.toml" >"$work/authbridge-gateway.toml"
cat >>"$work/authbridge-gateway.toml" <<EOF
[[resources]]
uri = "$gateway_issuer/mcp"
name = "OwnerRez MCP server (gateway, SSE answers)"
scopes = ["mcp"]
default_scopes = ["mcp"]
proxy = { upstream_url = "$backend_url/mcp", response_timeout_ms = 30000 }

[[resources]]
uri = "$gateway_issuer/mcp-json"
name = "OwnerRez MCP server (gateway, JSON answers)"
scopes = ["mcp"]
default_scopes = ["mcp"]
proxy = { upstream_url = "$backend_url/mcp-json", response_timeout_ms = 30000 }
EOF
start_authbridge authbridge-gateway "$gateway_issuer"

# The gateway backend.
PORT="$backend_port" HOST=127.0.0.1 OWNERREZ_API_BASE="$double_url/v2" \
OWNERREZ_USER_AGENT="authbridge-example-gateway-backend (interop)" \
  node "$root/examples/gateway-backend/server.mjs" >"$work/gateway-backend.log" 2>&1 &
backend_pid=$!
pids+=("$backend_pid")
wait_for "the gateway backend" "$backend_url/healthz" "$backend_pid"

say "authbridge $issuer, MCP server $mcp_url, gateway $gateway_issuer/mcp, OwnerRez double $double_url"

# ---------------------------------------------------------------------------------------------
# 3. The clients.

export AUTHBRIDGE_ISSUER="$issuer"
export MCP_URL="$mcp_url"
export MCP_RESOURCE_METADATA_URL="$mcp_public/.well-known/oauth-protected-resource/mcp"
export OWNERREZ_DOUBLE_URL="$double_url"
export ADMIN_TOKEN="$admin_token"
export EXPECTED_OWNERREZ_USER_ID=123456
export EXPECTED_OWNERREZ_NAME="Ann Owner"
export GATEWAY_ISSUER="$gateway_issuer"
export GATEWAY_SSE_MCP_URL="$gateway_issuer/mcp"
export GATEWAY_JSON_MCP_URL="$gateway_issuer/mcp-json"

# client name | files that must all exist (else the step is skipped) | command (from the root)
steps=(
  "ts-sdk|tests/interop/ts/sdk-client.mjs|node tests/interop/ts/sdk-client.mjs"
  "python-sdk|tests/interop/py/sdk_client.py tests/interop/py/requirements.txt|tests/interop/.venv/bin/python tests/interop/py/sdk_client.py"
  "ts-sdk-gateway|tests/interop/ts/gateway-client.mjs|node tests/interop/ts/gateway-client.mjs"
  "python-sdk-gateway|tests/interop/py/gateway_client.py tests/interop/py/requirements.txt|tests/interop/.venv/bin/python tests/interop/py/gateway_client.py"
  "oauth4webapi|tests/interop/js/oauth4webapi-client.mjs|node tests/interop/js/oauth4webapi-client.mjs"
  "hosts|tests/interop/js/hosts.mjs|node tests/interop/js/hosts.mjs"
  "cors|tests/interop/js/cors.mjs|node tests/interop/js/cors.mjs"
  "browser|tests/interop/browser.sh|bash tests/interop/browser.sh"
)

passed=0
for entry in "${steps[@]}"; do
  IFS='|' read -r client files command <<<"$entry"
  missing=""
  for file in $files; do [ -f "$root/$file" ] || missing="$missing $file"; done
  if [ -n "$missing" ]; then
    say "skipping $client: missing$missing"
    continue
  fi
  say "running $client: $command"
  status=0
  (cd "$root" && timeout 180 $command) 2>&1 | tee "$work/step.log" || status=$?
  checks=$(grep -c '^ok - ' "$work/step.log" || true)
  if [ "$status" -ne 0 ]; then
    passed=$((passed + checks))
    heading=$({ grep '^== ' "$work/step.log" || true; } | tail -n 1 | sed 's/^== //')
    say "FAILED: $client ($command) exited with status $status, in step: ${heading:-before its first step}" >&2
    show_logs >&2
    say "$passed passed, 1 failed"
    exit 1
  fi
  # A step that prints no `ok - ` line counts as one check.
  [ "$checks" -gt 0 ] || checks=1
  passed=$((passed + checks))
  say "$client: $checks checks passed"
done

say "done in $(($(date +%s) - started_at)) s"
say "$passed passed, 0 failed"
