"""Signature verification, against GitHub's own published request and our test signer."""

from __future__ import annotations

import dataclasses
import json
from typing import Any

import pytest
from partner_helpers import ALERT_PATH, SHARED, KeyServer, Signer, start_client

import rules
from partner_endpoint.app import create_app
from partner_endpoint.github.keys import parse_key_document
from partner_endpoint.github.verify import (
    BadSignature,
    MalformedSignature,
    MissingHeaders,
    signature_headers,
    verify_signature,
)
from partner_endpoint.settings import Settings


@pytest.fixture(scope="module")
def github_request() -> dict[str, Any]:
    return json.loads((SHARED / "github" / "signed_request.json").read_text())


def test_githubs_published_request_verifies(github_request: dict[str, Any]) -> None:
    keys = parse_key_document(github_request["public_keys_document"])
    key_id, signature = signature_headers({k.lower(): v for k, v in github_request["headers"].items()})
    verify_signature(keys[key_id], signature, github_request["body"].encode())


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
        {"token_hash": rules.identity("some_token"), "token_type": "some_type", "label": "false_positive"}
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
