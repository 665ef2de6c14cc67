"""The migrations' files sort in the order Alembic applies them (their revision ids cannot change:
databases in service name them)."""

from __future__ import annotations

from pathlib import Path

from alembic.script import ScriptDirectory

import partner_endpoint

VERSIONS = Path(partner_endpoint.__file__).parent / "migrations"


def test_the_files_sort_in_the_order_of_application() -> None:
    scripts = ScriptDirectory(str(VERSIONS))
    applied = [Path(s.path).name for s in reversed(list(scripts.walk_revisions("base", "heads")))]
    assert applied == sorted(p.name for p in (VERSIONS / "versions").glob("0*.py"))
    assert len(scripts.get_heads()) == 1
