#!/usr/bin/env python3
"""The MCP Python SDK's client, unmodified, through authbridge's gateway mode to the example
backend (examples/gateway-backend), an MCP server that knows nothing of authbridge and calls the
OwnerRez double with the bearer token it receives.

For each gateway resource (GATEWAY_SSE_MCP_URL answers with SSE streams, GATEWAY_JSON_MCP_URL
with JSON), from scratch: the SDK's OAuth (401 from the gateway, discovery, DCR, consent,
OwnerRez double, code exchange), initialize, list_tools, ownerrez_me (the logged-in OwnerRez
user), notify_later (a server notification that arrives on the GET stream) and, on leaving, the
session DELETE.

Run by tests/interop/run.sh (GATEWAY_ISSUER, GATEWAY_SSE_MCP_URL, GATEWAY_JSON_MCP_URL).
Prints `ok - <check>` lines; on failure `not ok - MCP Python SDK via the gateway: <step>:
<message>`, exit 1.
"""

from __future__ import annotations

import os
import sys
from urllib.parse import urlsplit

import anyio
import httpx2
from mcp import ClientSession
from mcp.client.auth import OAuthClientProvider
from mcp.client.streamable_http import streamable_http_client
from mcp.shared.auth import OAuthClientMetadata

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from sdk_client import (  # noqa: E402
    EXPECTED_NAME,
    EXPECTED_USER_ID,
    TOOL_TIMEOUT_SECS,
    MemoryTokenStorage,
    User,
    free_port,
    http_client_with,
    tool_json,
    unwrap,
)
from user_agent import check, fail, step  # noqa: E402

CLIENT = "MCP Python SDK via the gateway"
ISSUER = os.environ["GATEWAY_ISSUER"]
NOTIFICATION_TIMEOUT_SECS = 10


class Wire:
    """Method, URL, status and content type of every response the SDK's HTTP client received."""

    def __init__(self) -> None:
        self.responses: list[tuple[str, str, int, str]] = []

    async def on_response(self, response: httpx2.Response) -> None:
        self.responses.append(
            (
                response.request.method,
                str(response.request.url.copy_with(query=None)),
                response.status_code,
                response.headers.get("content-type", ""),
            )
        )


async def through_the_gateway(label: str, mcp_url: str, expected_content_type: str) -> None:
    step(CLIENT, f"{label}: OAuth from scratch and initialize")
    redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
    user = User(redirect_uri)
    storage = MemoryTokenStorage()
    wire = Wire()
    provider = OAuthClientProvider(
        server_url=mcp_url,
        client_metadata=OAuthClientMetadata(
            client_name="MCP Python SDK via the gateway (authbridge interop)",
            redirect_uris=[redirect_uri],
            grant_types=["authorization_code", "refresh_token"],
            response_types=["code"],
            token_endpoint_auth_method="none",
        ),
        storage=storage,
        redirect_handler=user.redirect_handler,
        callback_handler=user.callback_handler,
    )
    http_client = http_client_with(provider)
    http_client.event_hooks["response"].append(wire.on_response)
    notifications = []
    arrived = anyio.Event()

    async def on_log(params) -> None:
        notifications.append(params)
        arrived.set()

    metadata_url = f"{ISSUER}/.well-known/oauth-protected-resource{urlsplit(mcp_url).path}"
    async with http_client, streamable_http_client(mcp_url, http_client=http_client) as (read, write):
        async with ClientSession(read, write, logging_callback=on_log) as session:
            initialized = await session.initialize()
            check("initialize reached the backend", initialized.server_info.name == "example-ownerrez-mcp-server", repr(initialized))
            check(
                "the gateway's 401 came first",
                wire.responses and wire.responses[0][1] == mcp_url and wire.responses[0][2] == 401,
                wire.responses[:3],
            )
            check(
                "the SDK read the gateway resource's metadata",
                any(u == metadata_url and s == 200 for _, u, s, _ in wire.responses),
                wire.responses,
            )
            check("the user authorized once", len(user.authorization_urls) == 1, user.authorization_urls)
            check("the SDK holds our tokens", storage.tokens is not None and bool(storage.tokens.access_token), repr(storage.tokens))

            step(CLIENT, f"{label}: list_tools and ownerrez_me")
            listed = await session.list_tools()
            names = {tool.name for tool in listed.tools}
            check("list_tools shows ownerrez_me and notify_later", {"ownerrez_me", "notify_later"} <= names, sorted(names))
            result = await session.call_tool("ownerrez_me", {}, read_timeout_seconds=TOOL_TIMEOUT_SECS)
            check("ownerrez_me succeeded", not result.is_error, repr(result))
            me = tool_json(result)
            check(
                f"the OwnerRez user {EXPECTED_USER_ID} / {EXPECTED_NAME!r}",
                me.get("id") == EXPECTED_USER_ID and me.get("name") == EXPECTED_NAME,
                me,
            )
            posts = [c for m, u, s, c in wire.responses if m == "POST" and u == mcp_url and s == 200]
            check(
                f"the backend's {expected_content_type} answers came through",
                posts and all(c.startswith(expected_content_type) for c in posts),
                wire.responses,
            )

            step(CLIENT, f"{label}: a server notification on the GET stream")
            await session.call_tool("notify_later", {}, read_timeout_seconds=TOOL_TIMEOUT_SECS)
            with anyio.fail_after(NOTIFICATION_TIMEOUT_SECS):
                await arrived.wait()
            check("notifications/message arrived", notifications[0].data == "hello from the GET stream", repr(notifications))
            check(
                "the GET stream was open (200, text/event-stream)",
                any(m == "GET" and u == mcp_url and s == 200 and c.startswith("text/event-stream") for m, u, s, c in wire.responses),
                wire.responses,
            )

    step(CLIENT, f"{label}: session DELETE on leaving")
    check(
        "DELETE went through the gateway and succeeded",
        any(m == "DELETE" and u == mcp_url and s == 200 for m, u, s, _ in wire.responses),
        wire.responses,
    )


async def main() -> None:
    await through_the_gateway("SSE", os.environ["GATEWAY_SSE_MCP_URL"], "text/event-stream")
    await through_the_gateway("JSON", os.environ["GATEWAY_JSON_MCP_URL"], "application/json")


if __name__ == "__main__":
    try:
        anyio.run(main)
    except BaseException as error:  # noqa: BLE001 - every failure is reported with its step
        if isinstance(error, SystemExit):
            raise
        fail(unwrap(error))
