"""The key change log that keeps every process's authentication cache in step with the database.

Revision ID: 0002_key_changes
Revises: 0002 (the outbox's letters; both branched from 0001 and were chained when merged)
"""

import sqlalchemy as sa
from alembic import op

from partner_endpoint.store.models import UTCDateTime

revision = "0002_key_changes"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    postgres = op.get_bind().dialect.name == "postgresql"
    op.create_table(
        "key_changes",
        # AUTOINCREMENT on SQLite: ids are never reused, even after the newest row is deleted.
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("account_id", sa.Integer, nullable=True),
        # PostgreSQL: the writing transaction's id, so readers can tell final rows from ones whose
        # transaction may still be running (ids are handed out before commit, not in commit order).
        sa.Column(
            "txid",
            sa.BigInteger,
            nullable=True,
            server_default=sa.text("(pg_current_xact_id()::text::bigint)") if postgres else None,
        ),
        sa.Column("changed_at", UTCDateTime, nullable=False),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_key_changes_txid", "key_changes", ["txid"])


def downgrade() -> None:
    op.drop_table("key_changes")
