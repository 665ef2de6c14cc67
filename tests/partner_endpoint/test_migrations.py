"""The migrations' files sort in the order Alembic applies them (their revision ids cannot change:
databases in service name them); an upgrade keeps what a database in service holds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alembic.script import ScriptDirectory
from cryptography.fernet import Fernet
from sqlalchemy import insert, text

import partner_endpoint
from partner_endpoint.store.db import make_engine, read_transaction, write_transaction
from partner_endpoint.store.key_documents import SharedKeyDocument
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.models import leak_events
from partner_endpoint.store.secretbox import SecretBox
from tests.support.partner import Clock, add_account, add_key, rows

VERSIONS = Path(partner_endpoint.__file__).parent / "migrations"


def test_the_files_sort_in_the_order_of_application() -> None:
    scripts = ScriptDirectory(str(VERSIONS))
    applied = [Path(s.path).name for s in reversed(list(scripts.walk_revisions("base", "heads")))]
    assert applied == sorted(p.name for p in (VERSIONS / "versions").glob("0*.py"))
    assert len(scripts.get_heads()) == 1


def test_githubs_key_document_and_sightings_survive_the_origins_revision(
    database_url: str, clock: Clock
) -> None:
    """A database in service at 0004: GitHub's shared document (row 1) keeps its keys and its claim, its
    sightings become GitHub's, and the other origins get rows of their own (on PostgreSQL the id
    sequence had never moved past the row inserted with its id)."""
    engine = make_engine(database_url)
    try:
        migrate(engine, "0004")
        now = clock.now()
        with write_transaction(engine) as conn:
            conn.execute(
                text(
                    "UPDATE github_key_document SET document = :doc, fetched_at = :t, attempted_at = :t,"
                    " finished_at = :t WHERE id = 1"
                ),
                {"doc": '{"public_keys": []}', "t": now},
            )
            account = add_account(conn, "o@x.test", [], now)
            key = add_key(conn, SecretBox([Fernet.generate_key().decode()]), account, "k", now)
            sighting = {"token_hash": "h", "token_type": "t", "url": "u", "source": "s", "location_hash": "l"}
            conn.execute(  # as revision 0004 recorded one: no origin
                insert(leak_events).values(
                    key_id=key.key_id, first_seen=now, last_seen=now, action="revoked", **sighting
                )
            )
        migrate(engine)
        github = SharedKeyDocument(engine).load()
        assert (github.document, github.fetched_at, github.in_flight) == ('{"public_keys": []}', now, False)
        assert not SharedKeyDocument(engine, "github").claim(now, timedelta(seconds=60), timedelta(seconds=3))
        for origin in ("gitlab", "deps.dev"):
            fresh = SharedKeyDocument(engine, origin)
            assert fresh.load().attempted_at is None
            assert fresh.claim(now, timedelta(seconds=60), timedelta(seconds=3))
            fresh.save('{"public_keys": ["theirs"]}', now)
        assert SharedKeyDocument(engine).load().document == '{"public_keys": []}'
        assert [row["origin"] for row in rows(engine, leak_events)] == ["github"]
    finally:
        engine.dispose()


def test_traffic_survives_the_clustering_revision_and_is_clustered_on_sqlite(database_url: str) -> None:
    """A database in service at 0007 keeps every traffic row through 0008; on SQLite the
    tables are then ordered by their primary key (``WITHOUT ROWID``), on PostgreSQL unchanged."""
    engine = make_engine(database_url)
    hours = [
        (7, 490_000 + h, f"198.51.100.{a}", h, a, h * 3600.0, h * 3600.0 + 59)
        for h in range(3)
        for a in (1, 2)
    ]
    minutes = [(7, 29_400_000 + m, m, 1) for m in range(5)]

    def stored() -> tuple[list[tuple[object, ...]], list[tuple[object, ...]]]:
        with read_transaction(engine) as conn:
            return (
                [tuple(r) for r in conn.execute(text("SELECT * FROM key_traffic_hours ORDER BY 1, 2, 3"))],
                [tuple(r) for r in conn.execute(text("SELECT * FROM key_traffic_minutes ORDER BY 1, 2"))],
            )

    def without_rowid() -> set[str]:
        if engine.dialect.name != "sqlite":
            return set()
        with read_transaction(engine) as conn:
            found = conn.execute(text("SELECT name, sql FROM sqlite_master WHERE name LIKE 'key_traffic_%'"))
            return {name for name, sql in found if sql and "WITHOUT ROWID" in sql.upper()}

    try:
        migrate(engine, "0007")
        with write_transaction(engine) as conn:
            conn.execute(
                text("INSERT INTO key_traffic_hours VALUES (:k, :h, :a, :n, :r, :f, :l)"),
                [dict(zip("khanrfl", row, strict=True)) for row in hours],
            )
            conn.execute(
                text("INSERT INTO key_traffic_minutes VALUES (:k, :m, :n, :r)"),
                [dict(zip("kmnr", row, strict=True)) for row in minutes],
            )
        assert without_rowid() == set()
        migrate(engine)
        assert stored() == (hours, minutes)
        clustered = {"key_traffic_hours", "key_traffic_minutes"} if engine.dialect.name == "sqlite" else set()
        assert without_rowid() == clustered
    finally:
        engine.dispose()
