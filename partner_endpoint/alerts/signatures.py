"""Verification of an origin's signature over the raw request body (GitHub's scheme, which deps.dev and
GitLab share under their own header names).

Modelled on PyPI Warehouse's ``integrations/secrets``: every failure is a typed
error that carries the reason used as a metric label and in logs.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from cryptography.exceptions import InvalidSignature as _CryptoInvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec

from partner_endpoint.domain.origins import GITHUB

KEY_ID_HEADER = GITHUB.key_id_header
SIGNATURE_HEADER = GITHUB.signature_header
_MAX_KEY_ID_LENGTH = 256
_MAX_SIGNATURE_LENGTH = 1024


class SignatureError(Exception):
    """The request is not provably from its origin: answer 401, change nothing."""

    reason = "invalid"

    def __init__(self, message: str = "") -> None:
        super().__init__(message or self.reason)


class MissingHeaders(SignatureError):
    reason = "missing_headers"


class MalformedSignature(SignatureError):
    reason = "malformed_signature"


class UnknownKeyIdentifier(SignatureError):
    reason = "unknown_key"


class BadSignature(SignatureError):
    reason = "bad_signature"


class KeysUnavailable(Exception):
    """No public key could be obtained at all (nothing cached, fetch failed): 503, so the origin retries."""

    reason = "keys_unavailable"


def signature_headers(
    headers: Mapping[str, str], key_id_header: str = KEY_ID_HEADER, signature_header: str = SIGNATURE_HEADER
) -> tuple[str, bytes]:
    """The key identifier and the decoded DER signature; ``headers`` must be case-insensitive."""
    key_id = headers.get(key_id_header, "").strip()
    signature_b64 = headers.get(signature_header, "").strip()
    if not key_id or not signature_b64:
        raise MissingHeaders()
    if len(key_id) > _MAX_KEY_ID_LENGTH or len(signature_b64) > _MAX_SIGNATURE_LENGTH:
        raise MalformedSignature("header too long")
    try:
        signature = base64.b64decode(signature_b64, validate=True)
    except (binascii.Error, ValueError):
        raise MalformedSignature("signature is not base64") from None
    if not signature:
        raise MalformedSignature("empty signature")
    return key_id, signature


def verify_signature(public_key: ec.EllipticCurvePublicKey, signature: bytes, body: bytes) -> None:
    """Check an ECDSA P-256 / SHA-256 DER signature over the exact body bytes."""
    try:
        public_key.verify(signature, body, ec.ECDSA(hashes.SHA256()))
    except _CryptoInvalidSignature:
        raise BadSignature() from None
