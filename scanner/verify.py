"""Is a found API key live? Ask the Soundpiece API once per distinct key (``--verify``).

Only ``spk_`` API keys are ever sent, and only to the configured API, over
https (plain http is allowed on loopback only, for testing against a local
server). A redirect is followed only while it stays on the configured host.
The answer is ``True`` (200: the key works), ``False`` (401: refused) or
``None`` (anything else: timeouts, 5xx, 429, a redirect elsewhere: could not tell).
Nothing here runs, and no connection is made, unless the user asked for it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

import rules
from scanner.errors import ScanError
from scanner.findings import Finding, Liveness

DEFAULT_API_URL = "https://api.soundpiece.co"
WHOAMI_PATH = "/v1/whoami"
MAX_REDIRECTS = 3

Verdict = bool | None


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


def judge(findings: list[Finding], options: VerifyOptions, *, only_live: bool = False) -> list[Finding]:
    """Each finding with the API's verdict on its credential; with ``only_live``, the live ones only.

    Only API keys are asked about; signing secrets are never sent and stay unknown.
    """
    keys = [f.match.secret.decode("ascii") for f in findings if f.type == rules.API_KEY.name]
    verdicts = verify_keys(keys, options)
    judged = [
        dataclasses.replace(f, live=Liveness(verdicts.get(f.match.secret.decode("ascii")))) for f in findings
    ]
    return [f for f in judged if f.live is Liveness.LIVE] if only_live else judged


def verify_keys(api_keys: Iterable[str], options: VerifyOptions = VerifyOptions()) -> dict[str, Verdict]:
    """One verdict per distinct key, each key asked about once, ``options.concurrency`` at a time."""
    base = checked_api_url(options.api_url)
    distinct = sorted(set(api_keys))
    if not distinct:
        return {}
    return asyncio.run(_verify_all(base, distinct, options))


async def _verify_all(base: httpx.URL, keys: list[str], options: VerifyOptions) -> dict[str, Verdict]:
    limit = asyncio.Semaphore(max(1, options.concurrency))
    limits = httpx.Limits(max_connections=max(1, options.concurrency))
    async with httpx.AsyncClient(timeout=options.timeout, follow_redirects=False, limits=limits) as client:

        async def one(key: str) -> Verdict:
            async with limit:
                return await _ask(client, base, key)

        verdicts = await asyncio.gather(*(one(key) for key in keys))
    return dict(zip(keys, verdicts, strict=True))


async def _ask(client: httpx.AsyncClient, base: httpx.URL, key: str) -> Verdict:
    url = base.join(WHOAMI_PATH)
    headers = {"Authorization": f"Bearer {key}", "Accept": "application/json"}
    try:
        for _ in range(MAX_REDIRECTS + 1):
            response = await client.get(url, headers=headers)
            if not response.is_redirect:
                return {200: True, 401: False}.get(response.status_code)
            location = response.headers.get("location", "")
            url = url.join(location)
            if url.host != base.host or url.port != base.port or url.scheme != base.scheme:
                return None  # never carry the key to another host
    except (httpx.HTTPError, httpx.InvalidURL, OSError):
        return None
    return None
