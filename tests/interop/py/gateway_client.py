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
from mcp import ClientSession
from mcp.client.streamable_http import streamable_http_client

sys.dont_write_bytecode = True  # no __pycache__ beside the sources
from sdk_support import TOOL_TIMEOUT_SECS, PublicClient, call_ownerrez_me, run  # noqa: E402
from user_agent import check, step  # noqa: E402

CLIENT = "MCP Python SDK via the gateway"
ISSUER = os.environ["GATEWAY_ISSUER"]
NOTIFICATION_TIMEOUT_SECS = 10


async def through_the_gateway(label: str, mcp_url: str, expected_content_type: str) -> None:
    step(CLIENT, f"{label}: OAuth from scratch and initialize")
    sdk = PublicClient(mcp_url, "MCP Python SDK via the gateway (authbridge interop)")
    user, storage, wire = sdk.user, sdk.storage, sdk.wire
    http_client = sdk.http_client()
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
                wire.responses and wire.responses[0].url == mcp_url and wire.responses[0].status == 401,
                wire.responses[:3],
            )
            check(
                "the SDK read the gateway resource's metadata",
                wire.saw(metadata_url, 200),
                wire.responses,
            )
            check("the user authorized once", len(user.authorization_urls) == 1, user.authorization_urls)
            check("the SDK holds our tokens", storage.tokens is not None and bool(storage.tokens.access_token), repr(storage.tokens))

            step(CLIENT, f"{label}: list_tools and ownerrez_me")
            listed = await session.list_tools()
            names = {tool.name for tool in listed.tools}
            check("list_tools shows ownerrez_me and notify_later", {"ownerrez_me", "notify_later"} <= names, sorted(names))
            await call_ownerrez_me(session)
            posts = [r.content_type for r in wire.responses if r.method == "POST" and r.url == mcp_url and r.status == 200]
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
                any(r.method == "GET" and r.url == mcp_url and r.status == 200 and r.content_type.startswith("text/event-stream") for r in wire.responses),
                wire.responses,
            )

    step(CLIENT, f"{label}: session DELETE on leaving")
    check(
        "DELETE went through the gateway and succeeded",
        wire.saw(mcp_url, 200, method="DELETE"),
        wire.responses,
    )


async def main() -> None:
    await through_the_gateway("SSE", os.environ["GATEWAY_SSE_MCP_URL"], "text/event-stream")
    await through_the_gateway("JSON", os.environ["GATEWAY_JSON_MCP_URL"], "application/json")


if __name__ == "__main__":
    run(main)
