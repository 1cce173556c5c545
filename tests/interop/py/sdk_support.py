"""What the MCP Python SDK clients (sdk_client.py, gateway_client.py) share: the simulated user,
the in-memory token storage, a record of every response on the wire, the SDK's provider set up
as a public client, and the run-and-report entry point.
"""

from __future__ import annotations

import base64
import json
import os
import socket
import sys
from typing import NamedTuple
from urllib.parse import parse_qs, urlsplit

import anyio
import httpx2
from mcp.client.auth import AuthorizationCodeResult, OAuthClientProvider, TokenStorage
from mcp.shared.auth import OAuthClientInformationFull, OAuthClientMetadata, OAuthToken

sys.dont_write_bytecode = True  # no __pycache__ beside the sources for user_agent
from user_agent import approve_consent, check, fail  # noqa: E402

TOOL_TIMEOUT_SECS = 60
EXPECTED_USER_ID = int(os.environ.get("EXPECTED_OWNERREZ_USER_ID", "123456"))
EXPECTED_NAME = os.environ.get("EXPECTED_OWNERREZ_NAME", "Ann Owner")


def http_client_with(provider: OAuthClientProvider) -> httpx2.AsyncClient:
    """An HTTP client for the transport, authenticated by the SDK's provider (the SDK's documented
    way: pass your own httpx2.AsyncClient), with the SDK's default timeouts."""
    return httpx2.AsyncClient(auth=provider, timeout=httpx2.Timeout(30.0, read=300.0))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def jwt_claims(token: str) -> dict:
    """The payload of a JWT, unverified (oauth4webapi-client.mjs verifies signatures)."""
    payload = token.split(".")[1]
    return json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))


def tool_json(result) -> object:
    texts = [c.text for c in result.content if getattr(c, "type", None) == "text"]
    check("the tool answered one text content", len(texts) == 1, repr(result))
    return json.loads(texts[0])


async def call_ownerrez_me(session) -> dict:
    """Calls the ownerrez_me tool and checks that it names the expected OwnerRez user."""
    result = await session.call_tool("ownerrez_me", {}, read_timeout_seconds=TOOL_TIMEOUT_SECS)
    check("ownerrez_me succeeded", not result.is_error, repr(result))
    me = tool_json(result)
    check(
        f"ownerrez_me returns the OwnerRez user {EXPECTED_USER_ID} / {EXPECTED_NAME!r}",
        me.get("id") == EXPECTED_USER_ID and me.get("name") == EXPECTED_NAME,
        me,
    )
    return me


class MemoryTokenStorage(TokenStorage):
    """The SDK's TokenStorage protocol, in memory."""

    def __init__(self) -> None:
        self.tokens: OAuthToken | None = None
        self.client_info: OAuthClientInformationFull | None = None

    async def get_tokens(self) -> OAuthToken | None:
        return self.tokens

    async def set_tokens(self, tokens: OAuthToken) -> None:
        self.tokens = tokens

    async def get_client_info(self) -> OAuthClientInformationFull | None:
        return self.client_info

    async def set_client_info(self, client_info: OAuthClientInformationFull) -> None:
        self.client_info = client_info


class AuthorizationRefused(Exception):
    """The redirect came back with an OAuth error instead of a code."""

    def __init__(self, error: str, description: str | None):
        super().__init__(f"{error}: {description}")
        self.error = error


class User:
    """The person at the browser: approves the consent page the SDK sends them to."""

    def __init__(self, redirect_uri: str) -> None:
        self.redirect_uri = redirect_uri
        self.authorization_urls: list[str] = []
        self.redirects: list[str] = []

    async def redirect_handler(self, authorization_url: str) -> None:
        self.authorization_urls.append(authorization_url)
        self.redirects.append(await approve_consent(authorization_url, self.redirect_uri))

    async def callback_handler(self) -> AuthorizationCodeResult:
        query = parse_qs(urlsplit(self.redirects[-1]).query)
        one = lambda name: query.get(name, [None])[0]  # noqa: E731
        if one("error"):
            raise AuthorizationRefused(one("error"), one("error_description"))
        return AuthorizationCodeResult(code=one("code"), state=one("state"), iss=one("iss"))


class Seen(NamedTuple):
    """One response the SDK's HTTP client received."""

    method: str
    url: str  # without the query
    status: int
    www_authenticate: str | None
    content_type: str


class Wire:
    """Every response the SDK's HTTP client received, for checks on what happened on the wire."""

    def __init__(self) -> None:
        self.responses: list[Seen] = []

    async def on_response(self, response: httpx2.Response) -> None:
        self.responses.append(
            Seen(
                response.request.method,
                str(response.request.url.copy_with(query=None)),
                response.status_code,
                response.headers.get("www-authenticate"),
                response.headers.get("content-type", ""),
            )
        )

    def saw(self, url: str, status: int, method: str | None = None) -> bool:
        """Whether a response to `url` (with `method` when given) had `status`."""
        return any(r.url == url and r.status == status and method in (None, r.method) for r in self.responses)


class PublicClient:
    """The SDK's OAuthClientProvider for `server_url` as a public client (DCR, PKCE) whose user
    approves in a simulated browser; `http_client` carries it and records the wire."""

    def __init__(self, server_url: str, client_name: str) -> None:
        self.redirect_uri = f"http://127.0.0.1:{free_port()}/callback"
        self.user = User(self.redirect_uri)
        self.storage = MemoryTokenStorage()
        self.wire = Wire()
        self.provider = OAuthClientProvider(
            server_url=server_url,
            client_metadata=OAuthClientMetadata(
                client_name=client_name,
                redirect_uris=[self.redirect_uri],
                grant_types=["authorization_code", "refresh_token"],
                response_types=["code"],
                token_endpoint_auth_method="none",
            ),
            storage=self.storage,
            redirect_handler=self.user.redirect_handler,
            callback_handler=self.user.callback_handler,
        )

    def http_client(self) -> httpx2.AsyncClient:
        """A new HTTP client authenticated by the provider, recording into `wire`."""
        client = http_client_with(self.provider)
        client.event_hooks["response"].append(self.wire.on_response)
        return client


def unwrap(error: BaseException) -> BaseException:
    """The one exception inside (nested) single-member exception groups."""
    while isinstance(error, BaseExceptionGroup) and len(error.exceptions) == 1:
        error = error.exceptions[0]
    return error


def run(main) -> None:
    """Runs `main`, reporting any failure with its step (`not ok - …`, exit 1)."""
    try:
        anyio.run(main)
    except BaseException as error:  # noqa: BLE001 - every failure is reported with its step
        if isinstance(error, SystemExit):
            raise
        fail(unwrap(error))
