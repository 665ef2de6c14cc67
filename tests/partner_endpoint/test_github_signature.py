"""Signature verification, against GitHub's own published request and our test signer."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest

from partner_endpoint.alerts.signatures import (
    BadSignature,
    MalformedSignature,
    MissingHeaders,
    signature_headers,
    verify_signature,
)
from partner_endpoint.alerts.signing_keys import parse_key_document
from partner_endpoint.app import create_app
from partner_endpoint.settings import Settings
from tests.support.github import ALERT_PATH, KeyServer, Signer
from tests.support.partner import start_client

GITHUB_EXAMPLE = Path(__file__).resolve().parents[1] / "data" / "github" / "signed_request.json"
"""GitHub's published signed request (see tests/data/README.md)."""


@pytest.fixture(scope="module")
def github_request() -> dict[str, Any]:
    return json.loads(GITHUB_EXAMPLE.read_text(encoding="utf-8"))


def test_githubs_published_request_verifies(github_request: dict[str, Any]) -> None:
    """GitHub's signature verifies with GitHub's key, and the same check refuses it with another key."""
    keys = parse_key_document(github_request["public_keys_document"])
    key_id, signature = signature_headers({k.lower(): v for k, v in github_request["headers"].items()})
    assert list(keys) == [key_id] == [github_request["headers"]["Github-Public-Key-Identifier"]]
    assert signature == base64.b64decode(github_request["headers"]["Github-Public-Key-Signature"])
    body = github_request["body"].encode()
    assert verify_signature(keys[key_id], signature, body) is None  # raises BadSignature otherwise
    with pytest.raises(BadSignature):
        verify_signature(Signer().private_key.public_key(), signature, body)


def test_githubs_request_fails_with_a_trailing_newline(github_request: dict[str, Any]) -> None:
    keys = parse_key_document(github_request["public_keys_document"])
    key_id, signature = signature_headers({k.lower(): v for k, v in github_request["headers"].items()})
    with pytest.raises(BadSignature):
        verify_signature(keys[key_id], signature, github_request["body"].encode() + b"\n")


def test_githubs_request_through_the_endpoint(github_request: dict[str, Any], settings: Settings) -> None:
    """GitHub's real request, its real key document served over HTTP, header names in upper case."""
    server = KeyServer(github_request["public_keys_document"])
    try:
        app = create_app(dataclasses.replace(settings, github_keys_url=server.url))
        with start_client(app) as client:
            headers = {k.upper(): v for k, v in github_request["headers"].items()}
            response = client.post(ALERT_PATH, content=github_request["body"].encode(), headers=headers)
    finally:
        server.close()
    assert response.status_code == 200, response.text
    assert response.json() == [
        {
            # GitHub's definition of token_hash, computed here independently of rules.identity (the
            # code under test): the oracle for GitHub's real request stays hashlib.
            "token_hash": hashlib.sha256(b"some_token").hexdigest(),
            "token_type": "some_type",
            "label": "false_positive",
        }
    ]


@pytest.mark.parametrize(
    ("headers", "error"),
    [
        ({}, MissingHeaders),
        ({"github-public-key-identifier": "k"}, MissingHeaders),
        ({"github-public-key-signature": "MEQ="}, MissingHeaders),
        (
            {"github-public-key-identifier": "k", "github-public-key-signature": "not base64!"},
            MalformedSignature,
        ),
        ({"github-public-key-identifier": "k", "github-public-key-signature": "=" * 4}, MalformedSignature),
        (
            {"github-public-key-identifier": "k" * 300, "github-public-key-signature": "MEQ="},
            MalformedSignature,
        ),
    ],
)
def test_bad_headers_are_typed_errors(headers: dict[str, str], error: type[Exception]) -> None:
    with pytest.raises(error) as raised:
        signature_headers(headers)
    assert raised.value.reason in {"missing_headers", "malformed_signature"}


def test_signature_by_another_key_is_refused(signer: Signer) -> None:
    other = Signer()
    body = b'[{"token":"x","type":"t"}]'
    _, signature = signature_headers({k.lower(): v for k, v in other.headers(body).items()})
    key = parse_key_document(signer.document)[signer.key_id]
    with pytest.raises(BadSignature):
        verify_signature(key, signature, body)


def test_key_document_skips_unusable_entries(signer: Signer) -> None:
    document = {
        "public_keys": [
            *signer.document["public_keys"],
            {"key_identifier": "junk", "key": "-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n"},
            {"key_identifier": 5, "key": None},
            "nonsense",
        ]
    }
    assert list(parse_key_document(document)) == [signer.key_id]
