"""IP addresses and networks, for account allowlists and trusted proxies. Pure.

IPv4-mapped IPv6 (``::ffff:192.0.2.1``, what a dual-stack socket reports for an IPv4 peer) is
read as the IPv4 address it carries, in addresses and in networks alike, so it matches IPv4 ranges.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Sequence

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

_MAPPED = ipaddress.IPv6Network("::ffff:0:0/96")


def parse_network(value: str) -> Network:
    """An address or CIDR range; a bare address becomes a /32 or /128 network.

    ValueError if invalid, and if bits are set after the prefix: ``203.0.113.5/2`` is a typo
    for ``203.0.113.5/32`` far more often than a wish for ``192.0.0.0/2``, so it is refused.
    """
    text = value.strip()
    interface = ipaddress.ip_interface(text)  # ValueError for anything that is not an address/prefix
    if interface.ip != interface.network.network_address:
        raise ValueError(
            f"{text!r} has bits set after the /{interface.network.prefixlen} prefix: "
            f"write {interface.network} for the whole range or {interface.ip} for one address"
        )
    return _unmapped(interface.network)


def parse_networks(values: Iterable[str]) -> tuple[Network, ...]:
    return tuple(parse_network(v) for v in values)


def parse_address(value: str | None) -> IPAddress | None:
    """The address in ``value`` (surrounding blanks allowed), or None for anything else."""
    try:
        address = ipaddress.ip_address((value or "").strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _unmapped(network: Network) -> Network:
    if isinstance(network, ipaddress.IPv6Network) and network.subnet_of(_MAPPED):
        return ipaddress.IPv4Network((int(network.network_address) & 0xFFFF_FFFF, network.prefixlen - 96))
    return network


def contains(networks: Iterable[Network], address: IPAddress | None) -> bool:
    return address is not None and any(address in network for network in networks)


def forwarded_client(
    peer: IPAddress | None, lines: Sequence[str], trusted: Sequence[Network]
) -> IPAddress | None:
    """The client behind a chain of trusted proxies, from an ``X-Forwarded-For``-style header.

    ``lines`` are all of the header's lines in order: a proxy may append to the last line or add
    a line of its own (HAProxy's ``option forwardfor``), and both mean one list (RFC 9110 §5.3).
    Each proxy appends the address it was connected from, so only the right end can be believed:
    walking from our peer leftwards, every hop that is a trusted proxy vouches for the entry
    before it, and the first entry that is not a trusted proxy is the client (None if it is not
    an address). Empty list elements are skipped (RFC 9110 §5.6.1). When every entry is a trusted
    proxy, the leftmost one is the client.
    """
    if not contains(trusted, peer):
        return peer
    client = peer
    for entry in reversed(",".join(lines).split(",")):
        if not entry.strip():
            continue
        client = parse_address(entry)
        if not contains(trusted, client):
            return client
    return client
