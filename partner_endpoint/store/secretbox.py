"""Encryption at rest of signing secrets: the service must be able to sign webhooks with them."""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from pathlib import Path

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.engine import make_url

from partner_endpoint.settings import Settings, SettingsError

log = logging.getLogger(__name__)


class SecretBox:
    """Fernet (AES-128-CBC + HMAC-SHA256) over one or more keys; the first encrypts, all decrypt."""

    def __init__(self, keys: list[str]) -> None:
        if not keys:
            raise SettingsError("no encryption key")
        try:
            self._fernet = MultiFernet([Fernet(k.encode("ascii")) for k in keys])
        except (ValueError, UnicodeEncodeError) as exc:
            raise SettingsError(f"SOUNDPIECE_SECRET_KEY is not a valid Fernet key: {exc}") from None

    def encrypt(self, plaintext: str) -> str:
        return self._fernet.encrypt(plaintext.encode("utf-8")).decode("ascii")

    def __repr__(self) -> str:
        return "SecretBox(<keys redacted>)"

    def can_decrypt(self, ciphertext: str) -> bool:
        try:
            self.decrypt(ciphertext)
        except (SettingsError, UnicodeError):
            return False
        return True

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SettingsError(
                "a stored signing secret does not decrypt with SOUNDPIECE_SECRET_KEY"
            ) from None


def load_secret_box(settings: Settings, stored: Sequence[str] = ()) -> SecretBox:
    """The box from ``SOUNDPIECE_SECRET_KEY``, or, for a local SQLite file only, a key file beside it.

    ``stored`` are ciphertexts already in the database (:func:`store.api_keys.stored_secret_samples`):
    a box that cannot decrypt them is refused, so a lost or wrong key stops the service at start-up
    instead of making every stored signing secret unreadable. A key file is generated only while
    nothing is stored: generating one beside existing secrets would silently orphan them.
    A server database (PostgreSQL) without an explicit key is refused: a key that lives on one
    replica's disk would make the others unable to decrypt. ``SOUNDPIECE_ALLOW_KEY_FILE=false``
    (set in the container image) refuses the key file for SQLite too.
    """
    if settings.secret_key:
        box = SecretBox([k.strip() for k in settings.secret_key.split(",") if k.strip()])
        source = "SOUNDPIECE_SECRET_KEY"
    else:
        key_file = _key_file(settings)
        if not key_file.exists():
            if stored:
                raise SettingsError(
                    f"the database holds encrypted signing secrets but the key file {key_file} is missing: "
                    "restore it or set SOUNDPIECE_SECRET_KEY; a new key would make them unreadable"
                )
            _generate(key_file)
        box = SecretBox([key_file.read_text().strip()])
        source = f"the key file {key_file}"
    for ciphertext in stored:
        if not box.can_decrypt(ciphertext):
            raise SettingsError(
                f"{source} cannot decrypt the signing secrets stored in the database: refusing to start "
                "(a lost or changed key; when rotating, list the new key first and keep the old one)"
            )
    return box


def _key_file(settings: Settings) -> Path:
    url = make_url(settings.database_url)
    if not settings.allow_key_file:
        raise SettingsError("SOUNDPIECE_SECRET_KEY is required (SOUNDPIECE_ALLOW_KEY_FILE is off)")
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise SettingsError("SOUNDPIECE_SECRET_KEY is required unless the database is a local SQLite file")
    return Path(url.database + ".key")


def _generate(key_file: Path) -> None:
    key_file.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as handle:
        handle.write(Fernet.generate_key().decode("ascii"))
    log.warning(
        "SOUNDPIECE_SECRET_KEY is not set: generated a development key",
        extra={"fields": {"key_file": str(key_file)}},
    )
