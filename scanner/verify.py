"""Is a found API key live? Ask the Soundpiece API once per distinct key (``--verify``).

Only ``spk_`` API keys are ever sent, and only to the configured API, over
https (plain http is allowed on loopback only, for testing against a local
server). A redirect is followed only while it stays on the configured host.
The answer is ``True`` (200: the key works), ``False`` (401: refused) or
``None`` (anything else: timeouts, 5xx, 429, a redirect elsewhere: could not tell).
Why it could not tell is one warning per scan, not one per key: the first reason and the count.
Nothing here runs, and no connection is made, unless the user asked for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
import socket
import ssl
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import httpx

import rules
from scanner.errors import ScanError
from scanner.findings import Finding, Liveness

DEFAULT_API_URL = "https://api.soundpiece.co"
WHOAMI_PATH = "/v1/whoami"
MAX_REDIRECTS = 3

Verdict = bool | None
Answer = tuple[Verdict, str | None]
"""A verdict, and when it is None, why (``connection refused``, ``answered 503``...)."""
Warn = Callable[[str], None]


class VerifyConfigError(ScanError):
    """The API URL is unusable for sending credentials (not https, or http off loopback)."""


@dataclass(frozen=True, slots=True)
class VerifyOptions:
    api_url: str = DEFAULT_API_URL
    concurrency: int = 8
    """Requests in flight at once: enough to hide latency, few enough not to look like an attack."""
    timeout: float = 10.0
    """Seconds per request (connect, read, write and pool each)."""


def checked_api_url(url: str) -> httpx.URL:
    """The API's base URL, refused unless it is https, or http to a loopback host."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, TypeError) as exc:
        raise VerifyConfigError(f"SOUNDPIECE_API_URL is not a URL: {url!r} ({exc})") from None
    if not parsed.host:
        raise VerifyConfigError(f"SOUNDPIECE_API_URL has no host: {url!r}")
    if parsed.scheme == "https" or (parsed.scheme == "http" and _is_loopback(parsed.host)):
        return parsed
    raise VerifyConfigError(
        f"SOUNDPIECE_API_URL must be https (plain http only on loopback), not {parsed.scheme}://{parsed.host}"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def judge(
    findings: list[Finding], options: VerifyOptions, warn: Warn, *, only_live: bool = False
) -> list[Finding]:
    """Each finding with the API's verdict on its credential; with ``only_live``, the live ones only.

    Only API keys are asked about; signing secrets are never sent and stay unknown.
    """
    keys = [f.match.secret.decode("ascii") for f in findings if f.type == rules.API_KEY.name]
    verdicts = verify_keys(keys, options, warn)
    judged = [
        dataclasses.replace(f, live=Liveness(verdicts.get(f.match.secret.decode("ascii")))) for f in findings
    ]
    return [f for f in judged if f.live is Liveness.LIVE] if only_live else judged


def verify_keys(
    api_keys: Iterable[str], options: VerifyOptions = VerifyOptions(), warn: Warn | None = None
) -> dict[str, Verdict]:
    """One verdict per distinct key, each key asked about once, ``options.concurrency`` at a time.

    Keys whose verdict is None are one ``warn`` together, saying why for the first of them."""
    base = checked_api_url(options.api_url)
    distinct = sorted(set(api_keys))
    if not distinct:
        return {}
    answers = asyncio.run(_verify_all(base, distinct, options))
    unknown = [why for _, why in answers.values() if why is not None]
    if unknown and warn is not None:
        warn(
            f"--verify could not tell whether {len(unknown)} of {len(distinct)} API keys are live:"
            f" {unknown[0]}"
        )
    return {key: verdict for key, (verdict, _) in answers.items()}


async def _verify_all(base: httpx.URL, keys: list[str], options: VerifyOptions) -> dict[str, Answer]:
    limit = asyncio.Semaphore(max(1, options.concurrency))
    limits = httpx.Limits(max_connections=max(1, options.concurrency))
    async with httpx.AsyncClient(timeout=options.timeout, follow_redirects=False, limits=limits) as client:

        async def one(key: str) -> Answer:
            async with limit:
                return await _ask(client, base, key)

        verdicts = await asyncio.gather(*(one(key) for key in keys))
    return dict(zip(keys, verdicts, strict=True))


async def _ask(client: httpx.AsyncClient, base: httpx.URL, key: str) -> Answer:
    url = base.join(WHOAMI_PATH)
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    try:
        for _ in range(MAX_REDIRECTS + 1):
            response = await client.get(url, headers=headers)
            if not response.is_redirect:
                verdict = {200: True, 401: False}.get(response.status_code)
                why = f"{url} answered {response.status_code} {response.reason_phrase}".rstrip()
                return verdict, None if verdict is not None else why
            location = response.headers.get("location", "")
            url = url.join(location)
            if url.host != base.host or url.port != base.port or url.scheme != base.scheme:
                return None, f"{base} redirected to {url.scheme}://{url.host}, another origin: not followed"
    except (httpx.HTTPError, httpx.InvalidURL, OSError) as exc:
        return None, f"cannot reach {url} ({_cause(exc)})"
    return None, f"{base} redirected more than {MAX_REDIRECTS} times"


def _cause(exc: BaseException) -> str:
    """The reason at the bottom of an HTTP client error, in words (httpx's own says "All connection
    attempts failed" for a refused connection)."""
    if isinstance(exc, httpx.TimeoutException):
        return f"no answer in time: {type(exc).__name__}"
    chain: list[BaseException] = []
    link: BaseException | None = exc
    while link is not None and link not in chain:
        chain.append(link)
        link = link.__cause__ or link.__context__
    for error in reversed(chain):
        if isinstance(error, socket.gaierror):
            return f"name not resolved: {error.strerror or error}"
        if isinstance(error, ConnectionRefusedError):
            return "connection refused"
        if isinstance(error, ssl.SSLError):
            return f"TLS failed: {error.reason or error}"
        if isinstance(error, OSError) and error.strerror:
            return error.strerror
    return f"{type(exc).__name__}: {exc}"
