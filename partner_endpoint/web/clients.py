"""Who sent a request, by this deployment's proxy settings: the one rule every part uses to
rate-limit a client or check an allowlist (the API, the alert endpoint, dashboard sign-in)."""

from __future__ import annotations

import ipaddress

from starlette.requests import HTTPConnection

from partner_endpoint.domain.networks import IPAddress, forwarded_client, parse_address, parse_networks
from partner_endpoint.settings import Settings


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

    def of(self, conn: HTTPConnection) -> IPAddress | None:
        """The peer, or, behind trusted proxies, who connected to the outermost one.

        Every line of the proxy header counts (see :func:`networks.forwarded_client`).
        """
        peer = parse_address(conn.client.host if conn.client else None)
        if not self._proxy_header:
            return peer
        return forwarded_client(peer, conn.headers.getlist(self._proxy_header), self._trusted_proxies)

    def bucket(self, conn: HTTPConnection) -> str:
        """The client's rate-limit bucket: its IPv4 address or its IPv6 /64."""
        return bucket_of(self.of(conn))
