"""The local test signer: a P-256 key pair in the data folder that signs alerts as GitHub signs them.

It lets an operator or a developer try the whole loop (alert, revocation, mail, dashboard) on a
local ``serve`` with ``soundpiece-partner test-alert``, with no GitHub and no code of their own.
Whoever can read the private key can revoke keys, so the service trusts it only when
``SOUNDPIECE_TEST_SIGNER`` is on, and ``serve`` then refuses to listen beyond loopback.
"""

from __future__ import annotations

import base64
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec

from partner_endpoint.settings import SettingsError

KEY_ID_PREFIX = "soundpiece-test-signer-"


@dataclass(frozen=True, slots=True)
class TrialSigner:
    private_key: ec.EllipticCurvePrivateKey

    def __repr__(self) -> str:
        return f"TrialSigner(key_id={self.key_id!r})"

    @property
    def public_key(self) -> ec.EllipticCurvePublicKey:
        return self.private_key.public_key()

    @property
    def key_id(self) -> str:
        """Named after the public key, so a new key pair is a new identifier (never a stale cache hit)."""
        der = self.public_key.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
        )
        return KEY_ID_PREFIX + hashlib.sha256(der).hexdigest()[:16]

    def sign(self, body: bytes) -> str:
        """The base64 DER ECDSA-SHA256 signature over the exact body, as GitHub sends it."""
        return base64.b64encode(self.private_key.sign(body, ec.ECDSA(hashes.SHA256()))).decode("ascii")

    @classmethod
    def load(cls, path: Path) -> TrialSigner:
        """The signer ``serve`` made; SettingsError when there is none (or it is not ours)."""
        try:
            pem = path.read_bytes()
        except FileNotFoundError:
            raise SettingsError(
                f"no test signer at {path}: start the service with SOUNDPIECE_TEST_SIGNER=on "
                "(it creates one), with the same SOUNDPIECE_DATA_DIR"
            ) from None
        key = serialization.load_pem_private_key(pem, password=None)
        if not isinstance(key, ec.EllipticCurvePrivateKey) or not isinstance(key.curve, ec.SECP256R1):
            raise SettingsError(f"{path} does not hold a P-256 private key")
        return cls(key)

    @classmethod
    def load_or_create(cls, path: Path) -> TrialSigner:
        """The signer in ``path``, made there (owner-only, 0600) the first time."""
        if not path.exists():
            path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            key = ec.generate_private_key(ec.SECP256R1())
            pem = key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
            # Written whole under another name, then linked: a process that finds the file finds it whole.
            temporary = path.with_name(f".{path.name}.{os.getpid()}")
            fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
            with os.fdopen(fd, "wb") as handle:
                handle.write(pem)
            try:
                os.link(temporary, path)
            except FileExistsError:  # another process made one meanwhile: theirs stands
                pass
            finally:
                temporary.unlink()
        return cls.load(path)
