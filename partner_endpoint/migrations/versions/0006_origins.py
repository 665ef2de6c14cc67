"""Leak report origins: a key document per origin, the origin of each sighting, revocation API tokens.

- ``github_key_document`` becomes ``key_documents``, one row per origin: GitHub's row (id 1) keeps
  its document and its refetch claim, and is named ``github``; other origins' rows are made on
  first use. (A process of the previous version still running during an upgrade finds no
  ``github_key_document`` and falls back to its own refetch limit until it is replaced.)
- ``leak_events.origin``: the platform that reported the sighting; earlier rows are GitHub's.
- ``revocation_tokens``: the SHA-256 hashes of the pre-shared tokens self-managed GitLab
  instances call the Token Revocation API with.

Revision ID: 0006
Revises: 0004 (GitHub's key document)
"""

import sqlalchemy as sa
from alembic import op

from partner_endpoint.store.models import UTCDateTime

revision = "0006"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.rename_table("github_key_document", "key_documents")
    op.add_column(
        "key_documents", sa.Column("origin", sa.String(32), nullable=False, server_default="github")
    )
    op.create_index("uq_key_documents_origin", "key_documents", ["origin"], unique=True)
    if op.get_context().dialect.name == "postgresql":
        # Row 1 was inserted with its id given, so the id sequence never moved: the next row would get 1.
        op.execute(
            "SELECT setval(pg_get_serial_sequence('key_documents', 'id'), "
            "(SELECT coalesce(max(id), 0) + 1 FROM key_documents), false)"
        )
    op.add_column("leak_events", sa.Column("origin", sa.String(32), nullable=False, server_default="github"))
    op.create_table(
        "revocation_tokens",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(100), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("token_suffix", sa.String(4), nullable=False),
        sa.Column("created_at", UTCDateTime, nullable=False),
        sa.Column("last_used_at", UTCDateTime, nullable=True),
        sa.Column("revoked_at", UTCDateTime, nullable=True),
        sa.UniqueConstraint("token_hash"),
    )


def downgrade() -> None:
    op.drop_table("revocation_tokens")
    op.drop_column("leak_events", "origin")
    op.execute("DELETE FROM key_documents WHERE origin != 'github'")
    op.drop_index("uq_key_documents_origin", table_name="key_documents")
    op.drop_column("key_documents", "origin")
    op.rename_table("key_documents", "github_key_document")
