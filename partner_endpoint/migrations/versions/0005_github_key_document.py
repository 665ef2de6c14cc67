"""GitHub's key document, shared by every process and replica on the database.

One row: the last document fetched, when, when a fetch was last started and finished. The
refetch limit (once a minute at most) then holds for the whole deployment, not per
process: N workers no longer make N fetches a minute, and unknown key identifiers
cannot drain GitHub's 60-an-hour unauthenticated quota.

Revision ID: 0004
Revises: 0003 (the dashboard)
"""

import sqlalchemy as sa
from alembic import op

from partner_endpoint.store.models import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "github_key_document",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("document", sa.Text, nullable=True),
        sa.Column("fetched_at", UTCDateTime, nullable=True),
        sa.Column("attempted_at", UTCDateTime, nullable=True),
        sa.Column("finished_at", UTCDateTime, nullable=True),
        sa.Column("failed", sa.Boolean, nullable=False, server_default=sa.false()),
    )
    op.execute("INSERT INTO github_key_document (id, failed) VALUES (1, false)")


def downgrade() -> None:
    op.drop_table("github_key_document")
