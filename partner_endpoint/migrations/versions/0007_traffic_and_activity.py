"""Per-key traffic, the last use's address, and each account's activity log.

Traffic is counted in memory by every serving process and added here in the background: per key
and minute (kept a day), and per key, hour and client address (kept 90 days), with the first and
last time of each hour's requests. Times there are numbers (minutes and hours since the epoch,
seconds for first and last): a flush writes 100,000 rows, and converting as many timestamps
cost more than the writes. The activity log holds what happened to an account's keys and
sessions, written in the transaction of the change it records.

Revision ID: 0007
Revises: 0006 (leak report origins)
"""

import sqlalchemy as sa
from alembic import op

from partner_endpoint.store.models import UTCDateTime

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("api_keys", sa.Column("last_used_address", sa.String(64), nullable=True))
    op.create_table(
        "key_traffic_minutes",
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("minute", sa.Integer, nullable=False),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("refused", sa.Integer, nullable=False),
        sa.PrimaryKeyConstraint("key_id", "minute"),
    )
    op.create_index("ix_key_traffic_minutes_minute", "key_traffic_minutes", ["minute"])
    op.create_table(
        "key_traffic_hours",
        sa.Column("key_id", sa.Integer, nullable=False),
        sa.Column("hour", sa.Integer, nullable=False),
        # Compared as bytes on PostgreSQL (the primary key every flush probes; addresses have no locale).
        sa.Column(
            "address", sa.String(64).with_variant(sa.String(64, collation="C"), "postgresql"), nullable=False
        ),
        sa.Column("requests", sa.Integer, nullable=False),
        sa.Column("refused", sa.Integer, nullable=False),
        sa.Column("first_at", sa.Float, nullable=False),
        sa.Column("last_at", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("key_id", "hour", "address"),
    )
    op.create_index("ix_key_traffic_hours_hour", "key_traffic_hours", ["hour"])
    if op.get_context().dialect.name == "postgresql":
        # Room in each page for the new version of a row: a flush updates what the last one wrote,
        # and an update within the page touches no index (HOT).
        op.execute("ALTER TABLE key_traffic_minutes SET (fillfactor = 70)")
        op.execute("ALTER TABLE key_traffic_hours SET (fillfactor = 70)")
        # Each flush moves busy keys' last use: the same room keeps that update off their indexes
        # (for pages written from now on; older ones as they are vacuumed and refilled).
        op.execute("ALTER TABLE api_keys SET (fillfactor = 80)")
    op.create_table(
        "activity",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("at", UTCDateTime, nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key_id", sa.Integer, nullable=True),
        sa.Column("actor", sa.String(320), nullable=False),
        sa.Column("client", sa.String(64), nullable=True),
        sa.Column("details", sa.Text, nullable=False),
    )
    op.create_index("ix_activity_account_id", "activity", ["account_id", "id"])
    op.create_index("ix_activity_at", "activity", ["at", "id"])


def downgrade() -> None:
    op.drop_table("activity")
    op.drop_table("key_traffic_hours")
    op.drop_table("key_traffic_minutes")
    op.drop_column("api_keys", "last_used_address")
