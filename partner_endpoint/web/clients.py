"""Who sent a request, by this deployment's proxy settings: the one rule every part uses to
rate-limit a client or check an allowlist (the API, the alert endpoint, dashboard sign-in).

Every API request asks (traffic is counted per client), and parsing an address costs more than the
rest of a cached key's authentication; the same few clients send most requests, so the answer for
each (peer, proxy header lines) is kept in a bounded LRU cache. Long header lines are worked out
afresh each time, so a client cannot fill the cache with large keys.
"""

from __future__ import annotations

import functools
import ipaddress

from starlette.requests import HTTPConnection

from partner_endpoint.domain.networks import IPAddress, forwarded_client, parse_address, parse_networks
from partner_endpoint.settings import Settings

CACHED_CLIENTS = 4096
"""(peer, proxy header) pairs remembered per process."""
_MAX_CACHED_HEADER = 256
"""Proxy header lines longer than this in all are not cached (a key's size is bounded)."""


def bucket_of(address: IPAddress | None) -> str:
    """Whom a budget belongs to: an IPv4 address, or an IPv6 /64 (one subscriber's usual share)."""
    if address is None:
        return "unknown"
    if isinstance(address, ipaddress.IPv6Address):
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.IPv6Network((address, 64), strict=False))
    return str(address)


class ClientAddresses:
    def __init__(self, settings: Settings) -> None:
        self._proxy_header = settings.trusted_proxy_header
        self._trusted_proxies = parse_networks(settings.trusted_proxies)
        self._cached = functools.lru_cache(maxsize=CACHED_CLIENTS)(self._identify)

    def identify(self, conn: HTTPConnection) -> tuple[IPAddress | None, str]:
        """The client's address and its bucket (see :meth:`bucket`).

        The address is the peer's, or, behind trusted proxies, that of whoever connected to the
        outermost one; every line of the proxy header counts (see :func:`networks.forwarded_client`).
        """
        client = conn.scope.get("client")
        peer = client[0] if client else None
        if not self._proxy_header:
            return self._cached(peer, ())
        lines = tuple(conn.headers.getlist(self._proxy_header))
        if sum(map(len, lines)) > _MAX_CACHED_HEADER:
            return self._identify(peer, lines)
        return self._cached(peer, lines)

    def bucket(self, conn: HTTPConnection) -> str:
        """The client's rate-limit bucket: its IPv4 address or its IPv6 /64."""
        return self.identify(conn)[1]

    def _identify(self, peer: str | None, lines: tuple[str, ...]) -> tuple[IPAddress | None, str]:
        address = parse_address(peer)
        if self._proxy_header:
            address = forwarded_client(address, lines, self._trusted_proxies)
        return address, bucket_of(address)
