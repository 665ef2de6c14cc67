"""Account owner addresses: one plain mailbox, nothing a mail parser could read as more."""

from __future__ import annotations

import os
import subprocess
from email.headerregistry import Address
from email.utils import getaddresses
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st

from partner_endpoint.domain.owner_address import owner_address
from tests.support.invalid_text import invalid_text
from tests.support.services import PARTNER as CLI

ACCEPTED = [
    "owner@example.com",
    "first.last+tag@mail.example.co.uk",
    "o'brien@example.org",
    "x@b.c",
    "ops_team-1@xn--bcher-kva.example",
    "a" * 64 + "@" + ".".join(["d" * 63] * 2) + ".io",
]
REFUSED = [
    "a@b.c,x@evil.example",
    "a@b.c, x@evil.example",
    "a@b.c;x@evil.example",
    "Owner <owner@example.com>",
    "owner@example.com (comment)",
    "owner@example.com\r\nBcc: x@evil.example",
    "owner@example.com\n",
    '"a b"@example.com',
    '"a,b"@example.com',
    "a@[127.0.0.1]",
    "a@b@example.com",
    "a..b@example.com",
    ".a@example.com",
    "a.@example.com",
    "@example.com",
    "owner@",
    "owner",
    "owner@localhost",
    "owner@-example.com",
    "owner@example-.com",
    "owner@example..com",
    "owner@example.com.",
    "owner@192.168.0.1",
    "ünïcode@example.com",
    "owner@bücher.example",
    "a" * 65 + "@example.com",
    "a@" + "d" * 64 + ".com",
    "a@" + ".".join(["d" * 63] * 4) + ".io",
    "",
]


@pytest.mark.parametrize("address", ACCEPTED)
def test_plain_addresses_are_accepted(address: str) -> None:
    assert owner_address(address) == address


@pytest.mark.parametrize("address", REFUSED)
def test_anything_more_or_less_than_one_plain_address_is_refused(address: str) -> None:
    with pytest.raises(ValueError):
        owner_address(address)


@given(text=st.from_regex(r"[A-Za-z0-9.,;:<>()\"'@ +_-]{1,40}", fullmatch=True) | invalid_text(40))
def test_whatever_is_accepted_is_exactly_one_mailbox_to_the_mail_parser(text: str) -> None:
    """The oracle is the standard library's own header parser, not these rules."""
    try:
        accepted = owner_address(text)
    except ValueError:
        return
    assert getaddresses([accepted]) == [("", accepted)]
    local, _, domain = accepted.rpartition("@")
    assert str(Address(username=local, domain=domain)) == accepted


def test_accounts_create_refuses_two_addresses_in_one(tmp_path: Path) -> None:
    """Before: ``a@b.c,x@evil.example`` was stored, and every leak notice went to both."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")} | {
        "SOUNDPIECE_DATABASE_URL": f"sqlite:///{tmp_path / 'addresses.db'}",
        "SOUNDPIECE_SECRET_KEY": Fernet.generate_key().decode(),
    }
    subprocess.run([CLI, "migrate"], env=env, capture_output=True, timeout=60, check=True)
    result = subprocess.run(
        [CLI, "accounts", "create", "--email", "a@b.c,x@evil.example"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2
    assert "not one plain address" in result.stderr
