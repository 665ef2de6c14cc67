"""SQLite keeps the traffic tables in their primary key's order (``WITHOUT ROWID``).

A key's page reads its week: 168 hours times its addresses. In a rowid table those rows lie where
each flush appended them, among every other key's, and each is found through the primary key's
index and then read from the table: two lookups a row, on pages scattered over the file. Clustered
by (key, hour, address), a key's week is one short run of pages, the file is a third smaller, and
the key page reads it in half the time (bench/dashboard_render.py). PostgreSQL is unchanged: its
tables have no such option, and they are not the slow part there.

Revision ID: 0008
Revises: 0007 (traffic and activity)
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

_TABLES: dict[str, tuple[list[sa.schema.SchemaItem], str]] = {
    "key_traffic_minutes": (
        [
            sa.Column("key_id", sa.Integer, nullable=False),
            sa.Column("minute", sa.Integer, nullable=False),
            sa.Column("requests", sa.Integer, nullable=False),
            sa.Column("refused", sa.Integer, nullable=False),
            sa.PrimaryKeyConstraint("key_id", "minute"),
        ],
        "minute",
    ),
    "key_traffic_hours": (
        [
            sa.Column("key_id", sa.Integer, nullable=False),
            sa.Column("hour", sa.Integer, nullable=False),
            sa.Column("address", sa.String(64), nullable=False),
            sa.Column("requests", sa.Integer, nullable=False),
            sa.Column("refused", sa.Integer, nullable=False),
            sa.Column("first_at", sa.Float, nullable=False),
            sa.Column("last_at", sa.Float, nullable=False),
            sa.PrimaryKeyConstraint("key_id", "hour", "address"),
        ],
        "hour",
    ),
}


def _rebuild(with_rowid: bool) -> None:
    for name, (columns, time_column) in _TABLES.items():
        op.create_table(f"{name}_new", *columns, sqlite_with_rowid=with_rowid)
        op.execute(f"INSERT INTO {name}_new SELECT * FROM {name}")
        op.drop_table(name)
        op.rename_table(f"{name}_new", name)
        op.create_index(f"ix_{name}_{time_column}", name, [time_column])


def upgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild(with_rowid=False)


def downgrade() -> None:
    if op.get_context().dialect.name == "sqlite":
        _rebuild(with_rowid=True)
