"""The key store: nothing stored in clear, secrets encrypted at rest, schema versioned by migrations."""

from __future__ import annotations

import stat
from collections.abc import Callable
from pathlib import Path

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select, text

import rules
from partner_endpoint.services.accounts import AccountService
from partner_endpoint.services.keys import KeyService
from partner_endpoint.settings import GITHUB_KEYS_URL, Settings, SettingsError, default_data_dir
from partner_endpoint.store import api_keys
from partner_endpoint.store.db import NotFound, read_transaction
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.models import metadata, signing_secrets
from partner_endpoint.store.secretbox import SecretBox, load_secret_box
from tests.support.partner import Issued


def test_keys_are_never_stored_in_clear(engine: Engine, issue: Callable[..., Issued], box: SecretBox) -> None:
    issued = issue(label="secretive")
    with read_transaction(engine) as conn:
        dump = repr([conn.execute(select(table)).all() for table in metadata.sorted_tables])
        stored = conn.execute(select(signing_secrets)).mappings().one()
        assert box.decrypt(stored["secret_encrypted"]) == issued.signing_secret
    assert issued.api_key not in dump
    assert issued.signing_secret not in dump
    assert rules.identity(issued.api_key) in dump
    assert stored["secret_hash"] == rules.identity(issued.signing_secret)
    assert issued.signing_secret not in stored["secret_encrypted"]


def test_new_key_repr_hides_secrets(engine: Engine, box: SecretBox, clock) -> None:
    account = AccountService(engine, clock).create("o@example.com", ["192.0.2.1", "10.0.0.0/8"])
    new = KeyService(engine, box, clock).create(account, "x")
    assert not isinstance(new, int)
    assert new.api_key not in repr(new) and new.signing_secret not in repr(new)
    with read_transaction(engine) as conn:
        record = api_keys.find_for_auth(conn, rules.identity(new.api_key))
    assert record is not None
    assert [str(n) for n in record.allowlist] == ["192.0.2.1/32", "10.0.0.0/8"]


def test_unknown_account_and_bad_networks_are_refused(engine: Engine, box: SecretBox, clock) -> None:
    with pytest.raises(NotFound):
        KeyService(engine, box, clock).create(12345, "x")
    accounts = AccountService(engine, clock)
    for networks in (["300.1.1.1"], ["203.0.113.5/2"], ["10.0.0.0/8", "2001:db8::1/32"]):
        with pytest.raises(ValueError):
            accounts.create("o@example.com", networks)
    for email in ("nobody", "a@b.c\nBcc: x@y.z", "a b@c.d"):
        with pytest.raises(ValueError):
            accounts.create(email, [])
    assert accounts.summaries() == []


# SQLite cannot reflect the expression index on lower(owner_email), so it is checked by name below.
@pytest.mark.filterwarnings("ignore:Skipped unsupported reflection of expression-based index")
@pytest.mark.filterwarnings("ignore:autogenerate skipping metadata-specified expression-based index")
def test_migrations_match_the_models(engine: Engine) -> None:
    with engine.connect() as conn:
        differences = compare_metadata(MigrationContext.configure(conn), metadata)
        catalog = (
            "SELECT name FROM sqlite_master WHERE type = 'index'"
            if conn.dialect.name == "sqlite"
            else "SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"
        )
        indexes = set(conn.execute(text(catalog)).scalars())
    assert differences == []
    assert "ix_accounts_owner_email_lower" in indexes


def test_migrate_is_idempotent_and_versioned(engine: Engine) -> None:
    migrate(engine)
    with read_transaction(engine) as conn:
        assert conn.execute(text("SELECT version_num FROM alembic_version")).scalar_one() == "0008"


def test_secret_key_rotation_keeps_old_ciphertexts_readable() -> None:
    old, new = Fernet.generate_key().decode(), Fernet.generate_key().decode()
    ciphertext = SecretBox([old]).encrypt("whsec_x")
    assert SecretBox([new, old]).decrypt(ciphertext) == "whsec_x"
    with pytest.raises(SettingsError):
        SecretBox([new]).decrypt(ciphertext)


def test_development_key_file_next_to_sqlite(tmp_path: Path) -> None:
    settings = Settings(database_url=f"sqlite:///{tmp_path / 'dev.db'}")
    first = load_secret_box(settings)
    key_file = tmp_path / "dev.db.key"
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    assert load_secret_box(settings).decrypt(first.encrypt("s")) == "s"


@pytest.mark.parametrize(
    ("url", "key"),
    [
        ("postgresql+psycopg://postgres@127.0.0.1/test", None),
        ("sqlite:///:memory:", None),
        ("sqlite:///x.db", "not a fernet key"),
    ],
)
def test_missing_or_invalid_secret_key_is_refused(url: str, key: str | None) -> None:
    with pytest.raises(SettingsError):
        load_secret_box(Settings(database_url=url, secret_key=key))


def test_settings_from_environment() -> None:
    settings = Settings.from_env(
        {
            "SOUNDPIECE_DATABASE_URL": "postgresql+psycopg://db/x",
            "SOUNDPIECE_LEAK_POLICY": "flag",
            "SOUNDPIECE_SMTP_URL": "smtps://u:p@mail:465",
            "SOUNDPIECE_MAIL_FROM": "sec@example.com",
            "SOUNDPIECE_MAX_BODY_BYTES": "1024",
            "SOUNDPIECE_TRUSTED_PROXY_HEADER": "X-Forwarded-For",
            "SOUNDPIECE_TRUSTED_PROXIES": "10.0.0.0/8, 192.168.0.0/16",
            "SOUNDPIECE_MAIL_WORKER": "off",
            "UNRELATED": "x",
        }
    )
    assert settings.leak_policy == "flag"
    assert settings.max_body_bytes == 1024
    assert settings.trusted_proxies == ("10.0.0.0/8", "192.168.0.0/16")
    assert settings.mail_worker is False
    defaults = Settings.from_env({})
    assert defaults.database_url == f"sqlite:///{default_data_dir() / 'soundpiece.db'}"
    assert default_data_dir().is_absolute()  # the same whatever folder a command runs in
    assert (
        defaults.github_keys_url
        == GITHUB_KEYS_URL
        == "https://api.github.com/meta/public_keys/secret_scanning"
    )
    assert defaults.leak_policy == "revoke"
    for bad in (
        {"SOUNDPIECE_LEAK_POLICY": "ignore"},
        {"SOUNDPIECE_SMTP_URL": "http://x"},
        {"SOUNDPIECE_MAX_BODY_BYTES": "x"},
        {"SOUNDPIECE_TRUSTED_PROXIES": "10.0.0.0/33"},
        {"SOUNDPIECE_TRUSTED_PROXIES": "10.0.0.1/8"},  # bits set after the prefix
    ):
        with pytest.raises(SettingsError):
            Settings.from_env(bad)
