#!/usr/bin/env python3
"""A test double of OwnerRez for the interop suite, written from docs/ownerrez.md
(not from authbridge's provider code, nor from the Rust double in tests/api), Python stdlib only.

Serves:
- GET  /oauth/authorize           the user (id 123456, "Ann Owner") logs in at once: 302 to
                                  redirect_uri?code=tc_...&state=...; `scope` or `resource`
                                  (never sent by a correct client) come back as error=invalid_request.
- POST /oauth/access_token        HTTP Basic client authentication, a form body, the
                                  authorization_code and refresh_token grants; the "Standard"
                                  expiry policy's JSON (bearer, user_id as a number, refresh_token,
                                  expires_in 2592000, expires_at). Codes are single use, 10 minutes.
- DELETE /oauth/access_token/{t}  revocation; 404 when unknown or already revoked.
- GET  /v2/users/me               Bearer; {"id":123456,"name":"Ann Owner"} or 401 in OwnerRez's
                                  API error shape.
Every server-to-server call without a User-Agent is refused (400 user_agent_required).

Usage: ownerrez_double.py --port-file FILE [--port 0] --client-id c_... --client-secret s_...
       [--redirect-uri URL]   (the app's one redirect URL; any is accepted when absent)
The chosen port is written to --port-file once the server listens. Stops on SIGTERM/SIGINT.
"""

import argparse
import base64
import datetime
import json
import os
import secrets
import signal
import sys
import threading
import time
import urllib.parse
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

USER_ID = 123456
USER_DISPLAY_NAME = "Ann Owner"
CODE_TTL_SECS = 600
ACCESS_TOKEN_TTL_SECS = 2592000


class State:
    """Everything the double has issued, behind one lock."""

    def __init__(self, client_id, client_secret, redirect_uri):
        self.client_id = client_id
        self.client_secret = client_secret
        self.redirect_uri = redirect_uri
        self.lock = threading.Lock()
        self.codes = {}  # code -> (redirect_uri, expires_at)
        self.access_tokens = {}  # token -> {"expires_at": int, "revoked": bool}
        self.refresh_tokens = {}  # token -> {"revoked": bool}

    def issue_tokens(self):
        now = int(time.time())
        access_token = "at_" + secrets.token_urlsafe(24)
        refresh_token = "rt_" + secrets.token_urlsafe(24)
        self.access_tokens[access_token] = {"expires_at": now + ACCESS_TOKEN_TTL_SECS, "revoked": False}
        self.refresh_tokens[refresh_token] = {"revoked": False}
        expires_at = datetime.datetime.fromtimestamp(now + ACCESS_TOKEN_TTL_SECS, datetime.timezone.utc)
        return {
            "access_token": access_token,
            "token_type": "bearer",
            "scope": "all",
            "user_id": USER_ID,
            "user_display_name": USER_DISPLAY_NAME,
            "refresh_token": refresh_token,
            "refresh_token_supported": True,
            "expires_in": ACCESS_TOKEN_TTL_SECS,
            "expires_at": expires_at.isoformat().replace("+00:00", "Z"),
        }

    def live_access_token(self, token):
        found = self.access_tokens.get(token)
        return found is not None and not found["revoked"] and found["expires_at"] > time.time()


class Handler(BaseHTTPRequestHandler):
    server_version = "OwnerRezDouble/1"
    protocol_version = "HTTP/1.1"
    state: State = None  # set by main

    # --- plumbing ---------------------------------------------------------------------------

    def log_message(self, fmt, *args):
        sys.stderr.write("ownerrez-double: %s %s\n" % (self.address_string(), fmt % args))

    def send(self, status, body=b"", content_type=None, headers=()):
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def send_json(self, status, value):
        self.send(status, json.dumps(value).encode(), "application/json; charset=utf-8")

    def oauth_error(self, status, error, description):
        self.send_json(status, {"error": error, "error_description": description})

    def api_error(self, status, code, message):
        """OwnerRez's API error body (confirmed shape)."""
        self.send_json(status, {"messages": [message], "code": code, "status_code": status})

    def read_body(self):
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def has_user_agent(self):
        return bool((self.headers.get("User-Agent") or "").strip())

    def basic_credentials(self):
        header = self.headers.get("Authorization") or ""
        scheme, _, value = header.partition(" ")
        if scheme.lower() != "basic":
            return None
        try:
            decoded = base64.b64decode(value.strip(), validate=True).decode()
        except (ValueError, UnicodeDecodeError):
            return None
        client_id, sep, secret = decoded.partition(":")
        if not sep:
            return None
        # RFC 6749 §2.3.1: both parts are form-urlencoded before base64.
        return urllib.parse.unquote_plus(client_id), urllib.parse.unquote_plus(secret)

    def refuse_app_request(self):
        """A User-Agent first (OwnerRez rejects calls without one), then the app's Basic auth."""
        if not self.has_user_agent():
            self.api_error(400, "user_agent_required", "A User-Agent header is required")
            return True
        if self.basic_credentials() != (self.state.client_id, self.state.client_secret):
            self.send(
                401,
                json.dumps({"error": "invalid_client", "error_description": "Client authentication failed"}).encode(),
                "application/json; charset=utf-8",
                [("WWW-Authenticate", 'Basic realm="OwnerRez"')],
            )
            return True
        return False

    # --- routes -----------------------------------------------------------------------------

    def do_GET(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/oauth/authorize":
            self.authorize(urllib.parse.parse_qs(url.query))
        elif url.path == "/v2/users/me":
            self.users_me()
        elif url.path == "/healthz":
            self.send(200, b"ok", "text/plain")
        else:
            self.api_error(404, "not_found", "Not found")

    def do_POST(self):
        url = urllib.parse.urlsplit(self.path)
        if url.path == "/oauth/access_token":
            self.token()
        else:
            self.read_body()
            self.api_error(404, "not_found", "Not found")

    def do_DELETE(self):
        url = urllib.parse.urlsplit(self.path)
        prefix = "/oauth/access_token/"
        if url.path.startswith(prefix) and len(url.path) > len(prefix):
            self.revoke(urllib.parse.unquote(url.path[len(prefix):]))
        else:
            self.api_error(404, "not_found", "Not found")

    def authorize(self, query):
        def one(name):
            values = query.get(name)
            return values[0] if values else None

        if one("client_id") != self.state.client_id:
            self.send(400, b"unknown client_id", "text/plain")
            return
        redirect_uri = one("redirect_uri")
        if not redirect_uri:
            self.send(400, b"redirect_uri is required", "text/plain")
            return
        if self.state.redirect_uri and redirect_uri != self.state.redirect_uri:
            self.send(400, b"redirect_uri is not the app's redirect URL", "text/plain")
            return
        params = []
        if one("response_type") != "code":
            params.append(("error", "unsupported_response_type"))
        elif one("scope") is not None or one("resource") is not None:
            params.append(("error", "invalid_request"))
            params.append(("error_description", "scope and resource are not supported"))
        else:
            code = "tc_" + secrets.token_urlsafe(24)
            with self.state.lock:
                self.state.codes[code] = (redirect_uri, time.time() + CODE_TTL_SECS)
            params.append(("code", code))
        if one("state") is not None:
            params.append(("state", one("state")))
        separator = "&" if "?" in redirect_uri else "?"
        location = redirect_uri + separator + urllib.parse.urlencode(params)
        self.send(302, b"", headers=[("Location", location)])

    def token(self):
        body = self.read_body()
        if self.refuse_app_request():
            return
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if content_type != "application/x-www-form-urlencoded":
            self.oauth_error(400, "invalid_request", "The body must be a form")
            return
        form = urllib.parse.parse_qs(body.decode(), keep_blank_values=True)
        field = lambda name: (form.get(name) or [None])[0]
        if field("scope") is not None or field("resource") is not None:
            self.oauth_error(400, "invalid_request", "scope and resource are not supported")
            return
        grant_type = field("grant_type")
        with self.state.lock:
            if grant_type == "authorization_code":
                # Single use: a presented code is gone whatever happens next.
                issued = self.state.codes.pop(field("code") or "", None)
                if issued is None or issued[1] <= time.time():
                    self.oauth_error(400, "invalid_grant", "The code is invalid or expired")
                    return
                if field("redirect_uri") is not None and field("redirect_uri") != issued[0]:
                    self.oauth_error(400, "invalid_grant", "redirect_uri does not match")
                    return
                self.send_json(200, self.state.issue_tokens())
            elif grant_type == "refresh_token":
                found = self.state.refresh_tokens.get(field("refresh_token") or "")
                if found is None or found["revoked"]:
                    self.oauth_error(400, "invalid_grant", "The refresh token is invalid")
                    return
                found["revoked"] = True
                self.send_json(200, self.state.issue_tokens())
            else:
                self.oauth_error(400, "unsupported_grant_type", "Unsupported grant_type")

    def revoke(self, token):
        if self.refuse_app_request():
            return
        with self.state.lock:
            if not self.state.live_access_token(token):
                self.api_error(404, "not_found", "The access token was not found")
                return
            self.state.access_tokens[token]["revoked"] = True
        self.send(200)

    def users_me(self):
        if not self.has_user_agent():
            self.api_error(400, "user_agent_required", "A User-Agent header is required")
            return
        header = self.headers.get("Authorization") or ""
        scheme, _, token = header.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.api_error(401, "auth_required", "Authorization is required")
            return
        with self.state.lock:
            live = self.state.live_access_token(token.strip())
        if not live:
            self.api_error(401, "invalid_token", "The access token is invalid or has expired")
            return
        # The real fields are unknown (ownerrez.md); `id` and `name` are what the suite expects.
        self.send_json(200, {"id": USER_ID, "name": USER_DISPLAY_NAME})


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--client-id", required=True)
    parser.add_argument("--client-secret", required=True)
    parser.add_argument("--redirect-uri")
    args = parser.parse_args()

    Handler.state = State(args.client_id, args.client_secret, args.redirect_uri)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    with open(args.port_file + ".tmp", "w") as f:
        f.write(str(server.server_address[1]))
    # Renamed into place so a reader never sees a half-written port.
    os.replace(args.port_file + ".tmp", args.port_file)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()


if __name__ == "__main__":
    main()
