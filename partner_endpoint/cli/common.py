"""What every command shares: opening the database, printing, one-line errors."""

from __future__ import annotations

import argparse
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, inspect
from sqlalchemy.engine import make_url

from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.settings import Settings
from partner_endpoint.store import api_keys
from partner_endpoint.store.db import make_engine
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.secretbox import SecretBox, load_secret_box
from partner_endpoint.store.traffic import AddressUse


class CommandError(Exception):
    """A command cannot do what it was asked: one line on stderr, exit 2."""


def output(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data, default=_json_default, indent=2) if args.json else human)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


_SPANS = {"m": 60, "h": 3600, "d": 86400}


def since(text: str) -> datetime:
    """``--since``: an ISO 8601 time or date (UTC unless it says otherwise), or a span back from now
    (``90m``, ``24h``, ``7d``). argparse's type: its error is the usage error's message."""
    value = text.strip()
    if value[:-1].isdigit() and value[-1:] in _SPANS:
        return SYSTEM_CLOCK.now() - timedelta(seconds=int(value[:-1]) * _SPANS[value[-1]])
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"not a time ({text!r}): give 2026-12-01, 2026-12-01T09:30Z or 7d, 24h, 90m"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def address_json(use: AddressUse) -> dict[str, Any]:
    """A client address's use of a key, as ``keys usage`` and ``leaks list`` print it."""
    return {
        "address": use.address,
        "requests": use.requests,
        "refused": use.refused,
        "first": use.first_at.isoformat(),
        "last": use.last_at.isoformat(),
    }


def sqlite_file(settings: Settings) -> Path | None:
    """The SQLite database's file, or None for another database (or an in-memory one)."""
    url = make_url(settings.database_url)
    if url.get_backend_name() != "sqlite" or not url.database or url.database == ":memory:":
        return None
    return None if url.database.startswith("file:") else Path(url.database)


def open_database(settings: Settings, *, create: bool = False) -> Engine:
    """The database, its schema brought up to date.

    Only ``serve`` and ``migrate`` pass ``create``: any other command run with the wrong settings
    (another folder, a typo in the URL) must say so, not answer "no leaks" from a new, empty database.
    """
    engine = _existing(settings, create)
    migrate(engine)
    return engine


def open_keyed(settings: Settings, *, create: bool = False) -> tuple[Engine, SecretBox]:
    """:func:`open_database` and the encryption key, for the commands that use or write secrets: a key
    that cannot decrypt what the database holds is refused (SettingsError) before the schema is touched."""
    engine = _existing(settings, create)
    box = load_secret_box(settings, api_keys.stored_secret_samples(engine))
    migrate(engine)
    return engine, box


def _existing(settings: Settings, create: bool) -> Engine:
    """The engine, once the database is known to exist (or, with ``create``, may be created)."""
    path = sqlite_file(settings)
    if path is not None and not path.exists():
        if not create:
            raise CommandError(
                f"no database at {path}: run `soundpiece-partner migrate` to create it, "
                "or set SOUNDPIECE_DATA_DIR (or SOUNDPIECE_DATABASE_URL) to the service's"
            )
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    engine = make_engine(settings.database_url)
    if not create and not _has_schema(engine):
        engine.dispose()
        raise CommandError(
            f"the database {settings.shown_database} holds no Soundpiece schema: "
            "run `soundpiece-partner migrate` to create it"
        )
    return engine


def _has_schema(engine: Engine) -> bool:
    with engine.connect() as conn:
        return inspect(conn).has_table("alembic_version")
