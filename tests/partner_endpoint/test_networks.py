"""Addresses, networks and the proxy chain (``partner_endpoint.domain.networks``), against models built here.

The proxy-chain oracle is by construction: a request's header lines are built from a client address,
what the client forged before it, and the trusted hops after it, so the expected answer is known
without re-deriving the rule under test.
"""

from __future__ import annotations

import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partner_endpoint.domain.networks import contains, forwarded_client, parse_address, parse_network

TRUSTED = (ipaddress.ip_network("192.0.2.0/28"), ipaddress.ip_network("2001:db8:ff::/48"))
TRUSTED_HOPS = ["192.0.2.1", "192.0.2.15", "2001:db8:ff::1", "::ffff:192.0.2.3"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("10.0.0.0/8", "10.0.0.0/8"),
        (" 192.0.2.1 ", "192.0.2.1/32"),
        ("2001:db8::1", "2001:db8::1/128"),
        ("::ffff:10.0.0.0/104", "10.0.0.0/8"),
        ("::ffff:192.0.2.9", "192.0.2.9/32"),
        ("0.0.0.0/0", "0.0.0.0/0"),
    ],
)
def test_networks_are_read_exactly(text: str, expected: str) -> None:
    assert str(parse_network(text)) == expected


@pytest.mark.parametrize(
    "text", ["203.0.113.5/2", "10.0.0.1/8", "2001:db8::1/32", "::ffff:10.0.0.1/104", "300.1.1.1", "", "x/8"]
)
def test_invalid_networks_and_set_host_bits_are_refused(text: str) -> None:
    with pytest.raises(ValueError):
        parse_network(text)


def test_host_bits_error_names_both_readings() -> None:
    with pytest.raises(ValueError, match=r"192\.0\.0\.0/2.*203\.0\.113\.5"):
        parse_network("203.0.113.5/2")


@given(st.ip_addresses(v=4), st.integers(0, 32))
def test_mapped_ipv6_is_the_ipv4_address_it_carries(address: ipaddress.IPv4Address, prefix: int) -> None:
    network = ipaddress.IPv4Network((int(address), prefix), strict=False)
    mapped = parse_address(f"::ffff:{address}")
    assert mapped == address
    assert contains([network], mapped)
    assert parse_network(f"::ffff:{network.network_address}/{96 + prefix}") == network


@given(st.text(max_size=40))
def test_parse_address_never_raises(text: str) -> None:
    result = parse_address(text)
    assert result is None or isinstance(result, ipaddress.IPv4Address | ipaddress.IPv6Address)


UNTRUSTED_CLIENTS = {
    "198.51.100.7": ipaddress.IPv4Address("198.51.100.7"),
    "203.0.113.9": ipaddress.IPv4Address("203.0.113.9"),
    "2001:db8:1::5": ipaddress.IPv6Address("2001:db8:1::5"),
    "::ffff:198.51.100.8": ipaddress.IPv4Address("198.51.100.8"),
}
forged = st.lists(
    st.sampled_from(["198.51.100.99", "10.0.0.1", "192.0.2.1", "::1", "garbage", "", " ", "1.2.3.4:80"])
    | st.text(alphabet=st.characters(exclude_characters=","), max_size=12),
    max_size=4,
)


@st.composite
def chains(draw: st.DrawFn) -> tuple[list[str], str, list[str]]:
    """(header lines, the client, the hops) for a request through trusted proxies."""
    client = draw(st.sampled_from(sorted(UNTRUSTED_CLIENTS)))
    hops = draw(st.lists(st.sampled_from([*TRUSTED_HOPS, ""]), max_size=4))
    entries = [*draw(forged), f" {client} ", *hops]
    cuts = sorted(draw(st.sets(st.integers(1, max(1, len(entries) - 1)), max_size=3)))
    lines = [",".join(entries[a:b]) for a, b in zip([0, *cuts], [*cuts, len(entries)], strict=True)]
    return lines, client, hops


@settings(max_examples=400, deadline=None)
@given(chains())
def test_the_client_is_who_connected_to_the_outermost_trusted_proxy(
    chain: tuple[list[str], str, list[str]],
) -> None:
    lines, client, _hops = chain
    peer = ipaddress.ip_address("192.0.2.2")  # our own proxy: trusted
    assert forwarded_client(peer, lines, TRUSTED) == UNTRUSTED_CLIENTS[client]


@given(chains())
def test_an_untrusted_peer_is_the_client_whatever_it_sends(chain: tuple[list[str], str, list[str]]) -> None:
    lines, _, _ = chain
    peer = ipaddress.ip_address("203.0.113.200")
    assert forwarded_client(peer, lines, TRUSTED) == peer


def test_edges_of_the_chain() -> None:
    peer = ipaddress.ip_address("192.0.2.2")
    assert forwarded_client(peer, [], TRUSTED) == peer  # no header: the proxy itself
    assert forwarded_client(peer, ["192.0.2.1, 192.0.2.5"], TRUSTED) == ipaddress.ip_address("192.0.2.1")
    assert forwarded_client(peer, ["198.51.100.7, not-an-address"], TRUSTED) is None
    assert forwarded_client(None, ["198.51.100.7"], TRUSTED) is None
