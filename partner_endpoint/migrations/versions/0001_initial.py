"""Key store: accounts, API keys, signing secrets, leak events, mail outbox.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

from partner_endpoint.store.models import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("owner_email", sa.String(320), nullable=False),
        sa.Column("ip_allowlist", sa.Text, nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
    )
    op.create_table(
        "api_keys",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("label", sa.String(200), nullable=False),
        sa.Column("key_hash", sa.String(64), nullable=False),
        sa.Column("key_suffix", sa.String(4), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("key_hash"),
    )
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.create_table(
        "signing_secrets",
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), primary_key=True),
        sa.Column("secret_hash", sa.String(64), nullable=False),
        sa.Column("secret_encrypted", sa.Text, nullable=False),
        sa.UniqueConstraint("secret_hash"),
    )
    op.create_table(
        "leak_events",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("token_type", sa.String(100), nullable=False),
        sa.Column("url", sa.Text, nullable=False),
        sa.Column("source", sa.String(100), nullable=False),
        sa.Column("location_hash", sa.String(64), nullable=False),
        sa.Column("first_seen", UTCDateTime, nullable=False),
        sa.Column("last_seen", UTCDateTime, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.UniqueConstraint("token_hash", "location_hash", name="uq_leak_events_token_location"),
    )
    op.create_index("ix_leak_events_key_id", "leak_events", ["key_id"])
    op.create_table(
        "mail_outbox",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("key_id", sa.Integer, sa.ForeignKey("api_keys.id"), nullable=False),
        sa.Column("leak_event_id", sa.Integer, sa.ForeignKey("leak_events.id"), nullable=False),
        sa.Column("message_id", sa.String(200), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False),
        sa.Column("next_attempt_at", UTCDateTime, nullable=False),
        sa.Column("last_error", sa.Text, nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("sent_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("message_id"),
        sa.UniqueConstraint("key_id", "leak_event_id", name="uq_mail_outbox_key_event"),
    )
    op.create_index("ix_mail_outbox_due", "mail_outbox", ["status", "next_attempt_at"])


def downgrade() -> None:
    for table in ("mail_outbox", "leak_events", "signing_secrets", "api_keys", "accounts"):
        op.drop_table(table)
