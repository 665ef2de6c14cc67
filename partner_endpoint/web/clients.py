"""Who sent a request, by this deployment's proxy settings: the one rule every part uses to
rate-limit a client or check an allowlist (the API, the alert endpoint, dashboard sign-in)."""

from __future__ import annotations

from starlette.requests import HTTPConnection

from partner_endpoint.domain.networks import IPAddress, forwarded_client, parse_address, parse_networks
from partner_endpoint.settings import Settings
from partner_endpoint.web.failures import client_key


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

    def key(self, conn: HTTPConnection) -> str:
        """The client's rate-limit bucket: its IPv4 address or its IPv6 /64."""
        return client_key(self.of(conn))
