#!/usr/bin/env python3
"""The MCP Python SDK's client, unmodified, against authbridge and the example MCP server.

Its own OAuth support does everything: `OAuthClientProvider` discovers the protected resource
metadata from the MCP server's 401, then authbridge's metadata (issuer checked), registers
(DCR), sends the user to /authorize with PKCE and `resource`, checks `state` and the RFC 9207
`iss` on the way back and redeems the code. Only the user is simulated: `redirect_handler`
runs the consent page and the upstream login through the OwnerRez double
(user_agent.approve_consent), and `callback_handler` hands the SDK the redirect's code, state
and iss. Then `streamable_http_client` + `ClientSession`: initialize, list_tools, whoami,
ownerrez_me (token exchange at authbridge -> OwnerRez /v2/users/me) and admin_only, which needs
a scope authbridge does not grant: the server answers 403 insufficient_scope, the SDK tries a
step-up authorization for it, authbridge refuses the scope, and the call fails.

    AUTHBRIDGE_ISSUER=... MCP_URL=... EXPECTED_OWNERREZ_USER_ID=123456 \
    EXPECTED_OWNERREZ_NAME="Ann Owner" python sdk_client.py

Prints `ok - <check>` lines; on failure `not ok - MCP Python SDK: <step>: <message>`, exit 1.
"""

from __future__ import annotations

import logging
import os
import sys
from importlib.metadata import version
from urllib.parse import parse_qs, urlsplit

import anyio
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

sys.dont_write_bytecode = True  # no __pycache__ beside the sources for user_agent
from sdk_support import (  # noqa: E402
    TOOL_TIMEOUT_SECS,
    AuthorizationRefused,
    PublicClient,
    call_ownerrez_me,
    jwt_claims,
    run,
    tool_json,
    unwrap,
)
from user_agent import CheckFailed, check, step  # noqa: E402

CLIENT = "MCP Python SDK"


def env(name: str) -> str:
    value = os.environ.get(name)
    if not value:
        print(f"not ok - {CLIENT}: configuration: {name} is not set", flush=True)
        sys.exit(2)
    return value


ISSUER = env("AUTHBRIDGE_ISSUER")
MCP_URL = env("MCP_URL")


async def main() -> None:
    step(CLIENT, "setup")
    print(f"# mcp {version('mcp')}", flush=True)
    sdk = PublicClient(MCP_URL, "MCP Python SDK (authbridge interop)")
    user, storage, wire, redirect_uri = sdk.user, sdk.storage, sdk.wire, sdk.redirect_uri
    http_client = sdk.http_client()

    async with http_client, streamable_http_client(MCP_URL, http_client=http_client) as (read, write):
        async with ClientSession(read, write) as session:
            step(CLIENT, "initialize (401, discovery, registration, authorization, code exchange)")
            initialized = await session.initialize()
            check("initialize succeeded after the SDK's OAuth flow", initialized.server_info.name is not None, repr(initialized))
            check(
                "the first request got 401 with a resource_metadata challenge",
                any(r.status == 401 and "resource_metadata=" in (r.www_authenticate or "") for r in wire.responses),
                wire.responses,
            )
            check(
                "the SDK read authbridge's metadata and registered with it (201)",
                wire.saw(f"{ISSUER}/register", 201),
                wire.responses,
            )
            check(
                "the SDK stored its registered client",
                storage.client_info is not None and bool(storage.client_info.client_id),
                repr(storage.client_info),
            )
            check("the user was sent to authorize once", len(user.authorization_urls) == 1, user.authorization_urls)
            params = parse_qs(urlsplit(user.authorization_urls[0]).query)
            check(
                "the authorization request had PKCE S256, scope mcp and resource = MCP_URL",
                params.get("code_challenge_method") == ["S256"]
                and params.get("scope") == ["mcp"]
                and params.get("resource") == [MCP_URL]
                and params.get("redirect_uri") == [redirect_uri],
                params,
            )
            redirect_query = parse_qs(urlsplit(user.redirects[0]).query)
            check(
                "the redirect carried iss = AUTHBRIDGE_ISSUER (the SDK verified it)",
                redirect_query.get("iss") == [ISSUER],
                user.redirects[0],
            )
            check(
                "the SDK redeemed the code at /token (200)",
                wire.saw(f"{ISSUER}/token", 200),
                wire.responses,
            )
            tokens = storage.tokens
            check(
                "the SDK holds a Bearer access token, a refresh token and expires_in",
                tokens is not None and tokens.token_type.lower() == "bearer" and tokens.refresh_token and tokens.expires_in,
                repr(tokens),
            )
            claims = jwt_claims(tokens.access_token)
            check(
                "the access token names the issuer, MCP_URL as audience and the SDK's client",
                claims.get("iss") == ISSUER
                and claims.get("aud") in (MCP_URL, [MCP_URL])
                and claims.get("client_id") == storage.client_info.client_id,
                claims,
            )

            step(CLIENT, "list_tools")
            listed = await session.list_tools()
            names = {tool.name for tool in listed.tools}
            check("list_tools shows whoami, ownerrez_me and admin_only", {"whoami", "ownerrez_me", "admin_only"} <= names, sorted(names))

            step(CLIENT, "call whoami")
            whoami = await session.call_tool("whoami", {}, read_timeout_seconds=TOOL_TIMEOUT_SECS)
            check("whoami succeeded", not whoami.is_error, repr(whoami))
            me = tool_json(whoami)
            check(
                "whoami names the token's subject and client and scope mcp",
                me.get("sub") == claims["sub"]
                and me.get("client_id") == storage.client_info.client_id
                and "mcp" in str(me.get("scope", "")).split(),
                me,
            )

            step(CLIENT, "call ownerrez_me (token exchange -> OwnerRez /v2/users/me)")
            await call_ownerrez_me(session)

    # The SDK runs a step-up authorization inside the transport; when the user's side of it fails
    # (here: authbridge refuses the scope), the exception ends the whole connection rather than
    # only the call. So admin_only gets a connection of its own, with the same provider: the
    # tokens it holds are reused, no new login.
    step(CLIENT, "call admin_only on a second connection (insufficient scope)")
    before = len(wire.responses)
    authorizations_before = len(user.authorization_urls)
    admin = None
    reused = False
    refused: BaseException | None = None
    auth_log = logging.getLogger("mcp.client.auth.oauth2")
    auth_log.setLevel(logging.CRITICAL)  # the SDK logs the expected refusal with a traceback
    try:
        second = sdk.http_client()
        with anyio.fail_after(TOOL_TIMEOUT_SECS):
            async with second, streamable_http_client(MCP_URL, http_client=second) as (read, write):
                async with ClientSession(read, write) as session:
                    await session.initialize()
                    reused = len(user.authorization_urls) == authorizations_before
                    admin = await session.call_tool("admin_only", {}, read_timeout_seconds=TOOL_TIMEOUT_SECS)
    except Exception as error:  # noqa: BLE001 - the expected outcome, checked below
        refused = unwrap(error)
        if isinstance(refused, CheckFailed):
            raise refused from None
    finally:
        auth_log.setLevel(logging.NOTSET)
    check("the second connection reused the stored tokens (no new login before admin_only)", reused)
    check("admin_only did not succeed", refused is not None or (admin is not None and admin.is_error), repr(admin))
    print(f"# admin_only ended with: {type(refused).__name__ + ': ' + str(refused) if refused else repr(admin)}", flush=True)
    challenges = [r.www_authenticate for r in wire.responses[before:] if r.url == MCP_URL and r.status == 403]
    check(
        'the MCP server answered 403 with error="insufficient_scope"',
        any(c and 'error="insufficient_scope"' in c for c in challenges),
        wire.responses[before:],
    )
    if len(user.authorization_urls) > authorizations_before:
        # SEP-2350 step-up: the SDK asks for the challenged scope on top of mcp; authbridge does
        # not offer it and answers invalid_scope on the redirect, with iss.
        stepped = parse_qs(urlsplit(user.authorization_urls[-1]).query)
        check("the SDK's step-up authorization asked for more than mcp", set(stepped.get("scope", [""])[0].split()) > {"mcp"}, stepped)
        refusal = parse_qs(urlsplit(user.redirects[-1]).query)
        check(
            "authbridge refused the extra scope with invalid_scope (and iss)",
            refusal.get("error") == ["invalid_scope"] and refusal.get("iss") == [ISSUER],
            user.redirects[-1],
        )
        check(
            "the failure the SDK raised is that refusal",
            isinstance(refused, AuthorizationRefused) and refused.error == "invalid_scope",
            repr(refused),
        )


if __name__ == "__main__":
    run(main)
