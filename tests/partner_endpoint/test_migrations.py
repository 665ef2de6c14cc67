"""The migrations' files sort in the order Alembic applies them (their revision ids cannot change:
databases in service name them); an upgrade keeps what a database in service holds."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from alembic.script import ScriptDirectory
from sqlalchemy import text

import partner_endpoint
from partner_endpoint.store.db import make_engine, write_transaction
from partner_endpoint.store.key_documents import SharedKeyDocument
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.models import leak_events
from tests.support.partner import Clock, rows

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
            for statement in (
                "UPDATE github_key_document SET document = '{\"public_keys\": []}', fetched_at = :t,"
                " attempted_at = :t, finished_at = :t WHERE id = 1",
                "INSERT INTO accounts (id, owner_email, ip_allowlist, created_at)"
                " VALUES (1, 'o@x.test', '[]', :t)",
                "INSERT INTO api_keys (id, account_id, label, key_hash, key_suffix, status, created_at)"
                " VALUES (1, 1, 'old', 'h', 'abcd', 'revoked', :t)",
                "INSERT INTO leak_events (id, key_id, token_hash, token_type, url, source, location_hash,"
                " first_seen, last_seen, action) VALUES (1, 1, 'h', 't', 'u', 's', 'l', :t, :t, 'revoked')",
            ):
                conn.execute(text(statement), {"t": now})
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
