"""The dashboard: sessions, sign-in links, rate limits; deleted and rotated keys; listing indexes.

Sessions and sign-in links hold only SHA-256 hashes of what the browser or the
mail holds. Deleted keys stay (revoked) so their leak events keep their key.

Revision ID: 0003
Revises: 0002_key_changes
"""

import sqlalchemy as sa
from alembic import op

from partner_endpoint.store.models import UTCDateTime

revision = "0003"
down_revision = "0002_key_changes"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Plain ADD COLUMNs, not a batch: SQLite would rebuild api_keys, which leak events reference
    # (and it takes a foreign key only inline, in the ADD COLUMN itself).
    op.add_column("api_keys", sa.Column("deleted_at", UTCDateTime, nullable=True))
    if op.get_context().dialect.name == "sqlite":
        op.execute("ALTER TABLE api_keys ADD COLUMN rotated_from INTEGER REFERENCES api_keys (id)")
    else:
        op.add_column("api_keys", sa.Column("rotated_from", sa.Integer, nullable=True))
        op.create_foreign_key("fk_api_keys_rotated_from", "api_keys", "api_keys", ["rotated_from"], ["id"])
    op.add_column("api_keys", sa.Column("create_request", sa.String(64), nullable=True))
    op.create_index("uq_api_keys_create_request", "api_keys", ["create_request"], unique=True)
    op.drop_index("ix_api_keys_account_id", table_name="api_keys")
    op.create_index(
        "ix_api_keys_account_created", "api_keys", ["account_id", "deleted_at", "created_at", "id"]
    )
    op.create_index("ix_api_keys_account_label", "api_keys", ["account_id", "deleted_at", "label", "id"])
    op.create_index("ix_accounts_owner_email_lower", "accounts", [sa.text("lower(owner_email)")])
    op.create_table(
        "dashboard_sessions",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("account_id", sa.Integer, sa.ForeignKey("accounts.id"), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_seen_at", UTCDateTime, nullable=False),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_dashboard_sessions_last_seen_at", "dashboard_sessions", ["last_seen_at"])
    op.create_table(
        "sign_in_links",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("next_path", sa.String(200), nullable=True),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("expires_at", UTCDateTime, nullable=False),
        sa.Column("used_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("token_hash"),
    )
    op.create_index("ix_sign_in_links_expires_at", "sign_in_links", ["expires_at"])
    op.create_table(
        "rate_limits",
        sa.Column("bucket", sa.String(100), primary_key=True),
        sa.Column("window_start", UTCDateTime, nullable=False),
        sa.Column("hits", sa.Integer, nullable=False),
    )
    op.create_index("ix_rate_limits_window_start", "rate_limits", ["window_start"])


def downgrade() -> None:
    for table in ("rate_limits", "sign_in_links", "dashboard_sessions"):
        op.drop_table(table)
    op.drop_index("ix_accounts_owner_email_lower", table_name="accounts")
    op.drop_index("ix_api_keys_account_label", table_name="api_keys")
    op.drop_index("ix_api_keys_account_created", table_name="api_keys")
    op.create_index("ix_api_keys_account_id", "api_keys", ["account_id"])
    op.drop_index("uq_api_keys_create_request", table_name="api_keys")
    if op.get_context().dialect.name == "postgresql":
        op.drop_constraint("fk_api_keys_rotated_from", "api_keys", type_="foreignkey")
    for column in ("create_request", "rotated_from", "deleted_at"):
        op.drop_column("api_keys", column)
