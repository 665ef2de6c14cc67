"""The credential contract: docs/token-format.md's fixed vectors and properties of minting."""

from __future__ import annotations

import hashlib
import string
import zlib

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rules
from rules.checksum import checksum

VECTORS = [
    ("spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdL", "soundpiece_api_key"),
    ("whsec_abcdefghijklmnopqrstuvwxyz0123451nc0VA", "soundpiece_webhook_secret"),
    ("spk_000000000000000000000000000000002wjyrI", "soundpiece_api_key"),
    ("whsec_Soundpiecexxxxxxxxxxxxxxxxxxxxx30HxHoW", "soundpiece_webhook_secret"),
    ("spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdM", None),
    ("spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZd", None),
    ("spk_<your-key>", None),
]
BASE62 = string.digits + string.ascii_uppercase + string.ascii_lowercase


@pytest.mark.parametrize(("token", "expected"), VECTORS)
def test_fixed_vectors(token: str, expected: str | None) -> None:
    fmt = rules.recognise(token)
    assert (fmt.name if fmt else None) == expected
    assert rules.recognise(token.encode()) is fmt


def test_checksum_padding_vector() -> None:
    random_part = b"Soundpiecexxxxxxxxxxxxxxxxxxxxx3"
    assert zlib.crc32(random_part) == 265327544
    assert checksum(random_part) == b"0HxHoW"


def test_alphabet_order() -> None:
    assert rules.BASE62.decode() == BASE62


@pytest.mark.parametrize("fmt", rules.FORMATS, ids=lambda f: f.name)
def test_minted_token_shape(fmt: rules.TokenFormat) -> None:
    token = fmt.mint()
    assert len(token) == fmt.length == len(fmt.prefix) + 38
    assert token.startswith(fmt.prefix)
    assert set(token[len(fmt.prefix) :]) <= set(BASE62)
    assert rules.recognise(token) is fmt
    assert fmt.mint() != token


@given(st.sampled_from(rules.FORMATS), st.data())
def test_any_one_character_change_invalidates(fmt: rules.TokenFormat, data: st.DataObject) -> None:
    token = fmt.mint()
    index = data.draw(st.integers(len(fmt.prefix), len(token) - 1), label="index")
    replacement = data.draw(st.sampled_from(BASE62).filter(lambda c: c != token[index]), label="char")
    changed = token[:index] + replacement + token[index + 1 :]
    assert rules.recognise(changed) is None


@given(st.text(alphabet=BASE62, min_size=32, max_size=32), st.text(alphabet=BASE62, min_size=6, max_size=6))
def test_wrong_checksum_never_valid(random_part: str, check: str) -> None:
    valid = check == checksum(random_part.encode()).decode()
    assert (rules.recognise("spk_" + random_part + check) is not None) == valid


@given(st.binary(max_size=64) | st.text(max_size=64))
def test_recognise_never_raises_on_garbage(value: bytes | str) -> None:
    assert rules.recognise(value) is None or rules.identity(value)


def test_identity_is_sha256_hex() -> None:
    token = VECTORS[0][0]
    assert rules.identity(token) == rules.identity(token.encode())
    assert len(rules.identity(token)) == 64
    # The oracle is hashlib, not rules.identity: a test must not check code with the code itself.
    assert rules.identity(token) == hashlib.sha256(token.encode()).hexdigest()


def test_prefix_outside_checksum() -> None:
    body = VECTORS[0][0][4:]
    assert rules.recognise("whsec_" + body) is rules.WEBHOOK_SECRET


def test_redact_hides_the_secret() -> None:
    token = rules.API_KEY.mint()
    shown = rules.redact(token)
    assert shown.startswith("spk_") and shown.endswith(token[-3:])
    assert len(shown.replace("…", "")) <= 9


def test_pair_is_valid_and_repr_hides_secrets() -> None:
    pair = rules.mint_pair()
    assert rules.recognise(pair.api_key) is rules.API_KEY
    assert rules.recognise(pair.signing_secret) is rules.WEBHOOK_SECRET
    assert pair.api_key not in repr(pair) and pair.signing_secret not in repr(pair)


def test_partner_patterns_examples_match_their_regex() -> None:
    import re

    from rules.github import partner_patterns

    patterns = partner_patterns()
    assert [p["name"] for p in patterns] == ["soundpiece_api_key", "soundpiece_webhook_secret"]
    for p in patterns:
        assert re.fullmatch(p["regex"], p["example"])
        assert rules.recognise(p["example"]).name == p["name"]
