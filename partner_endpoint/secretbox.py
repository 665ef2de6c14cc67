"""Encryption at rest of signing secrets: the service must be able to sign webhooks with them."""

from __future__ import annotations

import logging
import os
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

    def decrypt(self, ciphertext: str) -> str:
        try:
            return self._fernet.decrypt(ciphertext.encode("ascii")).decode("utf-8")
        except InvalidToken:
            raise SettingsError(
                "a stored signing secret does not decrypt with SOUNDPIECE_SECRET_KEY"
            ) from None


def load_secret_box(settings: Settings) -> SecretBox:
    """The box from ``SOUNDPIECE_SECRET_KEY``, or, for a local SQLite file only, a generated key file.

    A server database (PostgreSQL) without an explicit key is refused: a key
    that lives on one replica's disk would make the others unable to decrypt.
    """
    if settings.secret_key:
        return SecretBox([k.strip() for k in settings.secret_key.split(",") if k.strip()])
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        raise SettingsError("SOUNDPIECE_SECRET_KEY is required unless the database is a local SQLite file")
    key_file = Path(url.database + ".key")
    if not key_file.exists():
        key_file.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:
            handle.write(Fernet.generate_key().decode("ascii"))
        log.warning(
            "SOUNDPIECE_SECRET_KEY is not set: generated a development key",
            extra={"fields": {"key_file": str(key_file)}},
        )
    return SecretBox([key_file.read_text().strip()])
