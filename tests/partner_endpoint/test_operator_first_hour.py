"""An operator's first hour with ``soundpiece-partner``, as subprocesses: where the data is, what a
command does with a database that is not there, errors in one line, ``--help`` and ``config``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from cryptography.fernet import Fernet
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import inspect

from partner_endpoint.settings import PREFIX, Settings, SettingsError, declared, reference
from partner_endpoint.store.db import make_engine
from tests.support.processes import HANG_GUARD, free_port
from tests.support.services import PARTNER as CLI
from tests.support.services import ROOT, postgres_url, scratch_schema


def run(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=HANG_GUARD, check=False
    )


def home_env(home: Path, **values: str) -> dict[str, str]:
    """An operator's environment: a home of their own, no SOUNDPIECE_* variables but ``values``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(PREFIX) and not k.startswith("XDG_") and k != "HOME"
    }
    return env | {"HOME": str(home)} | {PREFIX + k.upper(): v for k, v in values.items()}


def one_error_line(result: subprocess.CompletedProcess[str]) -> str:
    assert result.returncode == 2, result.stdout + result.stderr
    lines = [line for line in result.stderr.splitlines() if not line.startswith("{")]
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("soundpiece-partner: error: ") and "Traceback" not in result.stderr
    return lines[0]


# --- where the data is -------------------------------------------------------------------------

MANAGEMENT = [
    ("leaks", "list"),
    ("keys", "list", "--account", "1"),
    ("keys", "create", "--account", "1", "--label", "x"),
    ("keys", "revoke", "1"),
    ("keys", "delete", "1"),
    ("accounts", "list"),
    ("accounts", "create", "--email", "owner@example.com"),
    ("accounts", "allow-ip", "--account", "1", "10.0.0.0/8"),
    ("accounts", "set-allowlist", "--account", "1"),
    ("sign-in-link", "owner@example.com"),
    ("mail-worker", "--once"),
]


@pytest.mark.parametrize("command", MANAGEMENT, ids=" ".join)
def test_a_command_on_a_database_that_is_not_there_says_so_and_creates_nothing(
    tmp_path: Path, command: tuple[str, ...]
) -> None:
    """Before: ``leaks list`` from another folder made a new empty database and said "no leaks"."""
    home = tmp_path / "home"
    home.mkdir()
    result = run(home_env(home), *command, cwd=tmp_path)
    database = home / ".local" / "share" / "soundpiece" / "soundpiece.db"
    assert f"no database at {database}" in one_error_line(result)
    assert "soundpiece-partner migrate" in result.stderr
    assert not (home / ".local").exists() and list(tmp_path.iterdir()) == [home]


def test_a_postgresql_database_without_our_schema_is_refused_and_left_empty(tmp_path: Path) -> None:
    with scratch_schema(postgres_url()) as url:
        env = home_env(tmp_path, database_url=url, secret_key=Fernet.generate_key().decode())
        for command in (("leaks", "list"), ("accounts", "create", "--email", "owner@example.com")):
            assert "holds no Soundpiece schema" in one_error_line(run(env, *command))
        engine = make_engine(url)
        with engine.connect() as conn:
            assert inspect(conn).get_table_names() == []
        engine.dispose()
        assert run(env, "migrate").returncode == 0
        assert run(env, "leaks", "list").stdout.strip() == "no leaks"


def test_an_unreachable_database_is_one_line_without_its_password(tmp_path: Path) -> None:
    url = f"postgresql+psycopg://operator:hunter2secret@127.0.0.1:{free_port()}/soundpiece"
    line = one_error_line(run(home_env(tmp_path, database_url=url), "accounts", "list"))
    assert "hunter2secret" not in line and "operator:***@127.0.0.1" in line


def test_every_command_finds_the_same_data_whatever_folder_it_runs_in(tmp_path: Path) -> None:
    home, first, second = tmp_path / "home", tmp_path / "first", tmp_path / "second"
    for folder in (home, first, second):
        folder.mkdir()
    env = home_env(home)
    assert run(env, "migrate", cwd=first).returncode == 0
    created = json.loads(
        run(env, "accounts", "create", "--email", "owner@example.com", "--json", cwd=first).stdout
    )
    listed = json.loads(run(env, "accounts", "list", "--json", cwd=second).stdout)
    assert [a["account_id"] for a in listed] == [created["account_id"]]
    data = home / ".local" / "share" / "soundpiece"
    assert (data / "soundpiece.db").exists() and (data / "soundpiece.db.key").exists()
    assert list(first.iterdir()) == list(second.iterdir()) == []
    moved = home_env(home, data_dir=str(tmp_path / "elsewhere"))
    assert "no database at" in one_error_line(run(moved, "accounts", "list", cwd=first))


def test_help_names_the_database_in_use_every_setting_and_the_exit_codes(tmp_path: Path) -> None:
    """``--help`` names the database in use, as ``serve`` does in its first line (test_trial_alert)."""
    help_text = run(home_env(tmp_path), "--help").stdout
    assert f"database  sqlite:///{tmp_path}/.local/share/soundpiece/soundpiece.db" in help_text
    assert f".eml files in {tmp_path}/.local/share/soundpiece/outbox" in help_text
    for setting in declared():
        assert setting.variable in help_text
    assert "exit codes:" in help_text and "2  an error" in help_text


# --- accounts and keys that are not there; the new commands ------------------------------------


@pytest.fixture
def store(tmp_path: Path) -> dict[str, str]:
    env = home_env(tmp_path, secret_key=Fernet.generate_key().decode(), log_level="WARNING")
    assert run(env, "migrate").returncode == 0
    return env


@pytest.mark.parametrize(
    ("command", "says"),
    [
        (("keys", "list", "--account", "7"), "no account 7"),
        (("keys", "create", "--account", "7", "--label", "x"), "no account 7"),
        (("keys", "revoke", "99"), "no key 99"),
        (("keys", "delete", "99"), "no key 99"),
        (("accounts", "allow-ip", "--account", "7", "10.0.0.0/8"), "no account 7"),
        (("sign-in-link", "nobody@example.com"), "no account has the owner address nobody@example.com"),
    ],
)
def test_an_account_or_key_that_does_not_exist_is_an_error(
    store: dict[str, str], command: tuple[str, ...], says: str
) -> None:
    assert says in one_error_line(run(store, *command))


def test_accounts_list_and_keys_delete(store: dict[str, str]) -> None:
    assert run(store, "accounts", "list").stdout.strip() == "no accounts"
    first = json.loads(run(store, "accounts", "create", "--email", "a@example.com", "--json").stdout)[
        "account_id"
    ]
    second = json.loads(
        run(
            store, "accounts", "create", "--email", "b@example.com", "--allow-ip", "10.0.0.0/8", "--json"
        ).stdout
    )["account_id"]
    kept = json.loads(
        run(store, "keys", "create", "--account", str(first), "--label", "kept", "--json").stdout
    )
    gone = json.loads(
        run(store, "keys", "create", "--account", str(first), "--label", "gone", "--json").stdout
    )
    deleted = run(store, "keys", "delete", str(gone["key_id"]), "--json")
    assert json.loads(deleted.stdout) == {"key_id": gone["key_id"], "deleted": True}
    listed = json.loads(run(store, "accounts", "list", "--json").stdout)
    assert [
        (a["account_id"], a["owner_email"], a["ip_allowlist"], a["keys"], a["active_keys"]) for a in listed
    ] == [
        (first, "a@example.com", [], 1, 1),
        (second, "b@example.com", ["10.0.0.0/8"], 0, 0),
    ]
    assert [
        k["key_id"] for k in json.loads(run(store, "keys", "list", "--account", str(first), "--json").stdout)
    ] == [kept["key_id"]]
    assert "no key" in one_error_line(run(store, "keys", "delete", str(gone["key_id"])))  # gone already
    assert gone["key"] not in deleted.stdout + deleted.stderr


def test_sign_in_link_mints_a_link_for_an_owner(store: dict[str, str]) -> None:
    run(store, "accounts", "create", "--email", "Owner@Example.com")
    minted = json.loads(run(store, "sign-in-link", "owner@example.com", "--json").stdout)
    assert minted["url"].startswith("http://127.0.0.1:8000/dashboard/sign-in/")
    assert len(minted["url"].rsplit("/", 1)[1]) == 43
    # Whether it signs in is the browser journey's to show (tests/browser).


# --- without the [endpoint] extra --------------------------------------------------------------


def test_without_the_endpoint_extra_one_line_says_what_to_install(tmp_path: Path) -> None:
    """``python -S`` has the standard library alone, as a ``pip install .`` without the extra has
    none of the endpoint's dependencies."""
    code = "import sys; from partner_endpoint.cli import main; sys.exit(main(['accounts', 'list']))"
    env = {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT)}
    result = subprocess.run(
        [sys.executable, "-S", "-c", code], env=env, capture_output=True, text=True, timeout=HANG_GUARD
    )
    line = one_error_line(result)
    assert "pip install 'soundpiece-secret-defence[endpoint]'" in line


# --- settings: declared once -------------------------------------------------------------------


def test_config_shows_every_setting_and_no_secret(tmp_path: Path) -> None:
    secret = Fernet.generate_key().decode()
    env = home_env(
        tmp_path,
        secret_key=secret,
        database_url="postgresql+psycopg://user:dbpassword@db.internal/sp",
        smtp_url="smtp://mailer:smtppassword@mail.internal:587",
        leak_policy="flag",
    )
    shown = json.loads(run(env, "config", "--json").stdout)
    assert set(shown) == {s.variable for s in declared()}
    assert shown["SOUNDPIECE_LEAK_POLICY"] == "flag"
    assert shown["SOUNDPIECE_DATABASE_URL"] == "postgresql+psycopg://user:***@db.internal/sp"
    assert shown["SOUNDPIECE_SMTP_URL"] == "smtp://mailer:***@mail.internal:587"
    assert shown["SOUNDPIECE_SECRET_KEY"] == "(set)"
    text = run(env, "config").stdout
    for secret_text in (secret, "dbpassword", "smtppassword"):
        assert secret_text not in text and secret_text not in json.dumps(shown)


def test_the_documented_reference_is_the_declared_one() -> None:
    """docs/configuration.md holds ``soundpiece-partner config --reference`` word for word."""
    documented = (ROOT / "docs" / "configuration.md").read_text()
    assert reference() in documented


VARIABLES = st.sampled_from([s.variable for s in declared()])


@given(variable=VARIABLES, value=st.text(max_size=60))
def test_any_value_of_any_setting_gives_settings_or_an_error_naming_it(variable: str, value: str) -> None:
    try:
        Settings.from_env({variable: value})
    except SettingsError as exc:
        assert variable in str(exc)


@given(variable=VARIABLES)
def test_every_default_is_accepted_as_written(variable: str) -> None:
    """What the reference says a default is, written into the variable, is that default."""
    setting = next(s for s in declared() if s.variable == variable)
    if setting.default in (None, "") or setting.spec.shown_default is not None:
        return
    from partner_endpoint.settings import shown_value

    parsed = Settings.from_env({variable: shown_value(setting.default)})
    assert getattr(parsed, setting.name) == setting.default
