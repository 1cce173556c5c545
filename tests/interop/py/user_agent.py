"""A user's browser for the interop clients written in Python: the counterpart of
tests/interop/js/lib/user-agent.mjs.

`approve_consent(authorization_url, redirect_prefix)` opens authbridge's authorization URL with a
cookie-keeping HTTP client, submits the consent form with decision=approve, follows the login
through the OwnerRez double and authbridge's /upstream/callback, and returns the final redirect
to the client (its redirect URI with `code`, `state` and `iss`, or `error`) WITHOUT requesting
it, so https and custom-scheme redirect URIs work too.

`check(name, condition, detail)` prints `ok - <name>` or raises CheckFailed; `step(client, name)`
prints a heading and remembers where a failure happened; `fail(error)` prints
`not ok - <client>: <step>: <message>` and exits 1.
"""

from __future__ import annotations

import json
import re
import sys
from html.parser import HTMLParser
from urllib.parse import urljoin

import httpx2

MAX_REDIRECTS = 10
USER_AGENT = "authbridge-interop-user-agent/1 (Python httpx2)"

_current = {"client": "?", "step": "?"}


class CheckFailed(AssertionError):
    pass


def step(client: str, name: str) -> None:
    _current["client"], _current["step"] = client, name
    print(f"== {client}: {name}", flush=True)


def check(name: str, condition: object, detail: object = None) -> None:
    if not condition:
        text = detail if isinstance(detail, str) else json.dumps(detail, default=str)
        raise CheckFailed(f"{name}: {text}")
    print(f"ok - {name}", flush=True)


def fail(error: BaseException) -> None:
    message = f"{type(error).__name__}: {error}" if not isinstance(error, CheckFailed) else str(error)
    print(f"not ok - {_current['client']}: {_current['step']}: {message}", flush=True)
    sys.exit(1)


class _ConsentForm(HTMLParser):
    """The first form's action and its hidden inputs."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.action: str | None = None
        self.hidden: dict[str, str] = {}
        self._in_form = False
        self._seen_form = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        if tag == "form" and not self._seen_form:
            self._seen_form = self._in_form = True
            self.action = a.get("action")
        elif tag == "input" and self._in_form and a.get("type", "").lower() == "hidden" and a.get("name"):
            self.hidden[a["name"]] = a.get("value", "")

    def handle_endtag(self, tag: str) -> None:
        if tag == "form":
            self._in_form = False


def _page_text(html: str) -> str:
    text = re.sub(r"<(script|style|head)\b.*?</\1>", " ", html, flags=re.S | re.I)
    return re.sub(r"\s+", " ", re.sub(r"<[^>]+>", " ", text)).strip()[:400]


async def approve_consent(authorization_url: str, redirect_prefix: str) -> str:
    """Approves the consent page and returns the client's redirect URL, unrequested."""
    visited: list[str] = []
    async with httpx2.AsyncClient(
        follow_redirects=False,
        timeout=15.0,
        headers={"user-agent": USER_AGENT, "accept": "text/html,application/xhtml+xml"},
    ) as browser:

        async def follow(response: httpx2.Response) -> tuple[str | None, httpx2.Response]:
            for _ in range(MAX_REDIRECTS + 1):
                visited.append(f"{response.request.method} {response.request.url.copy_with(query=None)} -> {response.status_code}")
                if not 300 <= response.status_code < 400:
                    return None, response
                location = response.headers.get("location")
                if not location:
                    raise RuntimeError(f"HTTP {response.status_code} from {response.request.url} without a Location")
                target = urljoin(str(response.request.url), location)
                if target.startswith(redirect_prefix):
                    return target, response
                if not target.startswith(("http://", "https://")):
                    raise RuntimeError(f"redirected to {target}, which is not the expected {redirect_prefix}")
                response = await browser.get(target)
            raise RuntimeError(f"more than {MAX_REDIRECTS} redirects: {', '.join(visited)}")

        redirect, response = await follow(await browser.get(authorization_url))
        if redirect:
            return redirect  # remembered consent, or an error sent back to the client
        if response.status_code != 200:
            raise RuntimeError(f"the authorization page answered HTTP {response.status_code}: {_page_text(response.text)}")
        form = _ConsentForm()
        form.feed(response.text)
        if not form.hidden.get("request") or not form.hidden.get("csrf"):
            raise RuntimeError(f"no consent form with request and csrf at {response.request.url}: {_page_text(response.text)}")
        action = urljoin(str(response.request.url), form.action or str(response.request.url))
        redirect, response = await follow(
            await browser.post(action, data={**form.hidden, "decision": "approve"})
        )
        if redirect:
            return redirect
        raise RuntimeError(
            f"the login ended at {response.request.url} with HTTP {response.status_code} instead of redirecting to "
            f"{redirect_prefix}: {_page_text(response.text)} ({', '.join(visited)})"
        )
