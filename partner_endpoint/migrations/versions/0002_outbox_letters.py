"""Mail outbox: rows hold a kind and its data, rendered by the worker, not finished messages.

Queuing data keeps the alert's transaction short (a large batch renders nothing
inside it) and lets other mail than leak notices (sign-in links) use the same
outbox: ``key_id`` and ``leak_event_id`` become optional, and ``dedupe_key``
replaces the (key, leak event) uniqueness. Rows queued before this revision
keep their rendered ``message`` and are sent as they are.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("mail_outbox") as batch:
        batch.add_column(sa.Column("kind", sa.String(32), nullable=False, server_default="leak_notice"))
        batch.add_column(sa.Column("dedupe_key", sa.String(200), nullable=True))
        batch.add_column(sa.Column("payload", sa.Text, nullable=True))
        batch.alter_column("message", existing_type=sa.Text, nullable=True)
        batch.alter_column("key_id", existing_type=sa.Integer, nullable=True)
        batch.alter_column("leak_event_id", existing_type=sa.Integer, nullable=True)
        batch.drop_constraint("uq_mail_outbox_key_event", type_="unique")
    op.execute(
        "UPDATE mail_outbox SET dedupe_key = 'leak-' || CAST(key_id AS VARCHAR) || '-' "
        "|| CAST(leak_event_id AS VARCHAR)"
    )
    with op.batch_alter_table("mail_outbox") as batch:
        batch.alter_column("dedupe_key", existing_type=sa.String(200), nullable=False)
        batch.create_unique_constraint("uq_mail_outbox_dedupe_key", ["dedupe_key"])


def downgrade() -> None:
    op.execute("DELETE FROM mail_outbox WHERE message IS NULL")
    with op.batch_alter_table("mail_outbox") as batch:
        batch.drop_constraint("uq_mail_outbox_dedupe_key", type_="unique")
        batch.drop_column("payload")
        batch.drop_column("dedupe_key")
        batch.drop_column("kind")
        batch.alter_column("message", existing_type=sa.Text, nullable=False)
        batch.create_unique_constraint("uq_mail_outbox_key_event", ["key_id", "leak_event_id"])
