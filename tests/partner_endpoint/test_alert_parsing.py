"""Pure alert handling: parsing, classification, feedback."""

from __future__ import annotations

import json

import pytest

import rules
from partner_endpoint.alerts.batch import (
    AlertBatch,
    MalformedAlerts,
    Rejected,
    feedback,
    parse_batch,
)

VALID = [
    "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdL",
    "whsec_abcdefghijklmnopqrstuvwxyz0123451nc0VA",
    "spk_000000000000000000000000000000002wjyrI",
    "whsec_Soundpiecexxxxxxxxxxxxxxxxxxxxx30HxHoW",
]
INVALID = [
    "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdM",
    "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZd",
    "spk_<your-key>",
    "whsec_MfKQ9r8GKYqrTwjUPD8ILPZoo2BL3Z3B",  # Stripe-style, no checksum
]


def test_parses_github_batch_and_defaults_missing_url_and_source() -> None:
    body = json.dumps(
        [
            {"token": VALID[0], "type": "soundpiece_api_key", "url": "https://x", "source": "commit"},
            {"token": "abc", "type": "soundpiece_api_key"},
        ]
    ).encode()
    first, second = parse_batch(body).alerts
    assert (first.url, first.source, first.is_credential) == ("https://x", "commit", True)
    assert first.token_hash == rules.identity(VALID[0])
    assert (second.url, second.source, second.is_credential) == ("", "", False)


@pytest.mark.parametrize("token", VALID)
def test_fixed_vectors_are_credentials(token: str) -> None:
    (alert,) = parse_batch(json.dumps([{"token": token, "type": "t"}]).encode()).alerts
    assert alert.is_credential


@pytest.mark.parametrize("token", INVALID)
def test_look_alikes_are_not_credentials(token: str) -> None:
    (alert,) = parse_batch(json.dumps([{"token": token, "type": "t"}]).encode()).alerts
    assert not alert.is_credential


@pytest.mark.parametrize(
    "body",
    [b"", b"not json", b"\xff\xfe", b'{"token": "x"}', b"[" * 100_000 + b"]" * 100_000],
)
def test_bodies_that_are_not_json_arrays_are_rejected(body: bytes) -> None:
    with pytest.raises(MalformedAlerts):
        parse_batch(body)


BAD_ENTRIES = [
    (1, "not an object"),
    ({"type": "t"}, "token is not a string"),
    ({"token": 5, "type": "t"}, "token is not a string"),
    ({"token": "x", "type": None}, "type is not a string"),
    ({"token": "x", "type": "t", "url": 3}, "url is not a string"),
    ({"token": "x", "type": "t", "source": []}, "source is not a string"),
    ({"token": "", "type": "t"}, "empty token"),
    ({"token": "spk_\ud800", "type": "t"}, "token is not valid Unicode text"),
    ({"token": "\udfff" + VALID[0], "type": "t"}, "token is not valid Unicode text"),
]


@pytest.mark.parametrize(("entry", "reason"), BAD_ENTRIES)
def test_a_bad_entry_is_rejected_alone_and_its_neighbours_are_read(entry: object, reason: str) -> None:
    """Before, any bad entry made the whole batch 400 (or 500), and the keys beside it were never revoked."""
    good = {"token": VALID[0], "type": "soundpiece_api_key", "url": "https://x", "source": "content"}
    batch = parse_batch(json.dumps([good, entry, good]).encode())
    assert [alert.token_hash for alert in batch.alerts] == [rules.identity(VALID[0])] * 2
    assert batch.rejected == [Rejected(1, reason)]


def test_lone_surrogates_in_url_source_and_type_are_replaced_not_fatal() -> None:
    body = json.dumps(
        [{"token": VALID[0], "type": "t\udc80", "url": "https://x/\ud800y", "source": "\udbffcommit"}]
    ).encode()
    assert b"\\ud800" in body  # JSON escapes: the body itself is valid UTF-8
    (alert,) = parse_batch(body).alerts
    assert (alert.type, alert.url, alert.source) == ("t\ufffd", "https://x/\ufffdy", "\ufffdcommit")
    assert alert.is_credential
    assert len(alert.location_hash) == 64
    # A surrogate pair written as two escapes is one character, and is kept.
    (pair,) = parse_batch(b'[{"token": "x", "type": "t", "url": "\\ud83d\\ude00"}]').alerts
    assert pair.url == "\U0001f600"


def test_empty_batch_is_valid() -> None:
    assert parse_batch(b"[]") == AlertBatch([], [])


def test_feedback_has_one_entry_per_reported_token_in_order() -> None:
    body = json.dumps(
        [{"token": t, "type": "soundpiece_api_key"} for t in (VALID[0], VALID[2], VALID[0], "junk")]
    ).encode()
    alerts = parse_batch(body).alerts
    answer = feedback(alerts, {rules.identity(VALID[0])})
    assert [e["label"] for e in answer] == [
        "true_positive",
        "false_positive",
        "true_positive",
        "false_positive",
    ]
    assert answer[1] == {
        "token_hash": rules.identity(VALID[2]),
        "token_type": "soundpiece_api_key",
        "label": "false_positive",
    }
    assert all(set(e) == {"token_hash", "token_type", "label"} for e in answer)


def test_alert_repr_never_shows_the_token() -> None:
    (alert,) = parse_batch(json.dumps([{"token": VALID[0], "type": "t"}]).encode()).alerts
    assert VALID[0] not in repr(alert)


def test_source_compares_case_insensitively_for_location() -> None:
    a, b = parse_batch(
        json.dumps(
            [{"token": "x", "type": "t", "url": "u", "source": s} for s in ("Commit", "commit")]
        ).encode()
    ).alerts
    assert a.location_hash == b.location_hash
