"""Keeping the encryption key: a lost or wrong key stops the service at start-up; files are owner-only;
no credential in a repr."""

from __future__ import annotations

import asyncio
import os
import stat
from pathlib import Path
from typing import Any

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import text

from partner_endpoint.mail.transport import Delivery, EmlDirectory, transport_for
from partner_endpoint.settings import Settings, SettingsError
from partner_endpoint.store.db import make_engine, write_transaction
from partner_endpoint.store.secretbox import SecretBox, load_secret_box
from tests.support.services import ON_SQLITE, partner_command

ROOT = Path(__file__).resolve().parents[2]
cli = partner_command


def environment(database_url: str, tmp_path: Path, secret_key: str | None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")}
    env |= {
        "SOUNDPIECE_DATABASE_URL": database_url,
        "SOUNDPIECE_MAIL_DIR": str(tmp_path / "outbox"),
        "SOUNDPIECE_LOG_LEVEL": "WARNING",
        "SOUNDPIECE_GITHUB_KEYS_URL": "http://127.0.0.1:9/keys",  # never fetched: serve must not start
    }
    if secret_key is not None:
        env["SOUNDPIECE_SECRET_KEY"] = secret_key
    return env


def key_with_one_secret(env: dict[str, str]) -> None:
    assert cli(env, "migrate").returncode == 0
    assert cli(env, "accounts", "create", "--email", "o@example.com").returncode == 0
    created = cli(env, "keys", "create", "--account", "1", "--label", "ci")
    assert created.returncode == 0, created.stderr


@pytest.mark.parametrize(
    "command",
    [
        ("migrate",),
        ("serve", "--host", "127.0.0.1", "--port", "9"),
        ("mail-worker", "--once"),
        ("keys", "create", "--account", "1", "--label", "second"),
    ],
)
def test_a_key_that_cannot_decrypt_the_stored_secrets_stops_every_command_that_uses_it(
    database_url: str, tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Before: each of them started with the wrong key (migrate said the schema was up to date)."""
    key_with_one_secret(environment(database_url, tmp_path, Fernet.generate_key().decode()))
    wrong = environment(database_url, tmp_path, Fernet.generate_key().decode())
    result = cli(wrong, *command)
    assert result.returncode == 2, (result.stdout, result.stderr)
    assert "cannot decrypt the signing secrets stored in the database" in result.stderr
    engine = make_engine(database_url)
    with write_transaction(engine) as conn:
        assert conn.execute(text("SELECT count(*) FROM api_keys")).scalar_one() == 1
    engine.dispose()


def test_a_rotated_key_list_that_keeps_the_old_key_starts(database_url: str, tmp_path: Path) -> None:
    old = Fernet.generate_key().decode()
    key_with_one_secret(environment(database_url, tmp_path, old))
    rotated = environment(database_url, tmp_path, f"{Fernet.generate_key().decode()},{old}")
    assert cli(rotated, "migrate").returncode == 0


@ON_SQLITE
def test_a_lost_key_file_is_not_replaced_while_secrets_exist(database_url: str, tmp_path: Path) -> None:
    """Before: a new key was generated silently and every stored signing secret became unreadable."""
    env = environment(database_url, tmp_path, None)
    key_with_one_secret(env)
    key_file = tmp_path / "store.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    key_file.unlink()
    result = cli(env, "serve", "--host", "127.0.0.1", "--port", "9")
    assert result.returncode == 2
    assert "key file" in result.stderr and "is missing" in result.stderr
    assert not key_file.exists()


def test_the_image_refuses_a_key_file(tmp_path: Path) -> None:
    """The Dockerfile turns the key file off; without SOUNDPIECE_SECRET_KEY nothing starts."""
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "SOUNDPIECE_ALLOW_KEY_FILE=false" in dockerfile
    env = environment(f"sqlite:///{tmp_path / 'image.db'}", tmp_path, None) | {
        "SOUNDPIECE_ALLOW_KEY_FILE": "false"
    }
    result = cli(env, "serve", "--host", "127.0.0.1", "--port", "9")
    assert result.returncode == 2 and "SOUNDPIECE_SECRET_KEY is required" in result.stderr
    assert not (tmp_path / "image.db.key").exists()


def test_a_fresh_database_with_a_key_starts_and_the_check_ignores_an_empty_store(tmp_path: Path) -> None:
    settings = Settings(
        database_url=f"sqlite:///{tmp_path / 'fresh.db'}", secret_key=Fernet.generate_key().decode()
    )
    assert isinstance(load_secret_box(settings, []), SecretBox)
    stored = SecretBox([Fernet.generate_key().decode()]).encrypt("whsec_x")
    with pytest.raises(SettingsError):
        load_secret_box(settings, [stored])


# --- files ------------------------------------------------------------------------------------------------


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_sqlite_files_are_owner_only(tmp_path: Path) -> None:
    """Before: the database, -wal and -shm files were created 0644 (with the usual umask 022)."""
    previous = os.umask(0o022)
    try:
        engine = make_engine(f"sqlite:///{tmp_path / 'private.db'}")
        with write_transaction(engine) as conn:
            conn.execute(text("CREATE TABLE t (x)"))
            conn.execute(text("INSERT INTO t VALUES (1)"))
            files = sorted(p.name for p in tmp_path.iterdir())
            assert files == ["private.db", "private.db-shm", "private.db-wal"]
            assert {name: mode(tmp_path / name) for name in files} == dict.fromkeys(files, 0o600)
        engine.dispose()
    finally:
        os.umask(previous)


def test_eml_mails_are_owner_only(tmp_path: Path) -> None:
    """Before: 0644 files in a 0755 folder, each naming a recipient and their key."""
    previous = os.umask(0o022)
    try:
        folder = tmp_path / "outbox"
        asyncio.run(
            EmlDirectory(folder).send(Delivery("<leak-1-1@x>", "o@example.com", "Subject: x\n\nbody\n"))
        )
        (mail,) = folder.iterdir()
        assert (mode(folder), mode(mail)) == (0o700, 0o600)
    finally:
        os.umask(previous)


# --- reprs ------------------------------------------------------------------------------------------------


def test_settings_and_smtp_transport_never_show_their_credentials() -> None:
    """Before: repr() showed the Fernet key, the SMTP password and the GitHub token."""
    fernet = Fernet.generate_key().decode()
    settings = Settings.from_env(
        {
            "SOUNDPIECE_SECRET_KEY": fernet,
            "SOUNDPIECE_GITHUB_TOKEN": "ghp_tokenvalue1234567890",
            "SOUNDPIECE_SMTP_URL": "smtps://mailer:pa55w0rd-value@mail.example:465",
            "SOUNDPIECE_DATABASE_URL": "postgresql+psycopg://app:db-pa55w0rd@db.example/soundpiece",
        }
    )
    transport: Any = transport_for(settings)
    shown = repr(settings) + str(settings) + repr(transport) + repr(SecretBox([fernet]))
    for secret in (fernet, "ghp_tokenvalue1234567890", "pa55w0rd-value", "db-pa55w0rd"):
        assert secret not in shown
    assert "mail.example" in repr(transport) and "mailer" in repr(transport)
