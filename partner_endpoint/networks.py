"""IP addresses and networks, for account allowlists and trusted proxies. Pure."""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    """Addresses and CIDR ranges; a bare address becomes a /32 or /128 network. ValueError if invalid."""
    return tuple(ipaddress.ip_network(v.strip(), strict=False) for v in values)


def parse_address(value: str | None) -> IPAddress | None:
    try:
        return ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None


def contains(networks: Iterable[Network], address: IPAddress | None) -> bool:
    return address is not None and any(address in network for network in networks)
