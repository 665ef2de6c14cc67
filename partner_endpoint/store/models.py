"""The key store's tables (SQLAlchemy Core). Migrations in ``partner_endpoint/migrations`` create them."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    func,
)
from sqlalchemy.engine import Dialect


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime")
        return value.astimezone(UTC)

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None or value.tzinfo is not None:
            return value
        return value.replace(tzinfo=UTC)


metadata = MetaData()

accounts = Table(
    "accounts",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("owner_email", String(320), nullable=False),
    # JSON list of networks (addresses are stored as /32 or /128); empty: any address.
    Column("ip_allowlist", Text, nullable=False, default="[]"),
    Column("created_at", UTCDateTime, nullable=False),
)
# Sign-in finds an owner's accounts by address, whatever its case.
Index("ix_accounts_owner_email_lower", func.lower(accounts.c.owner_email))

api_keys = Table(
    "api_keys",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("label", String(200), nullable=False),
    Column("key_hash", String(64), nullable=False, unique=True),
    Column("key_suffix", String(4), nullable=False),
    Column("status", String(16), nullable=False, default="active"),
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    # The client address (an IPv4 address or IPv6 /64) of that last use.
    Column("last_used_address", String(64), nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
    # Deleted keys are revoked and hidden from their owner; their leak events stay.
    Column("deleted_at", UTCDateTime, nullable=True),
    # The key this one replaces (created by "Rotate"), for the create-deploy-delete guide.
    Column(
        "rotated_from", Integer, ForeignKey("api_keys.id", name="fk_api_keys_rotated_from"), nullable=True
    ),
    # Hash of the dashboard form that created the key: a resubmitted form creates nothing twice.
    Column("create_request", String(64), nullable=True),
    Index("uq_api_keys_create_request", "create_request", unique=True),
    # An account's visible keys, newest first or by label, a page at a time (deleted_at IS NULL is
    # matched in the index, so counting an account's keys reads the index alone).
    Index("ix_api_keys_account_created", "account_id", "deleted_at", "created_at", "id"),
    Index("ix_api_keys_account_label", "account_id", "deleted_at", "label", "id"),
)

signing_secrets = Table(
    "signing_secrets",
    metadata,
    Column("key_id", Integer, ForeignKey("api_keys.id"), primary_key=True),
    Column("secret_hash", String(64), nullable=False, unique=True),
    Column("secret_encrypted", Text, nullable=False),
)

leak_events = Table(
    "leak_events",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", Integer, ForeignKey("api_keys.id"), nullable=False, index=True),
    Column("token_hash", String(64), nullable=False),
    Column("token_type", String(100), nullable=False),
    Column("url", Text, nullable=False),
    Column("source", String(100), nullable=False),
    Column("location_hash", String(64), nullable=False),
    Column("first_seen", UTCDateTime, nullable=False),
    Column("last_seen", UTCDateTime, nullable=False),
    Column("action", String(32), nullable=False),
    # The platform that reported it (domain/origins.py); rows from before revision 0006 are GitHub's.
    Column("origin", String(32), nullable=False, server_default="github"),
    UniqueConstraint("token_hash", "location_hash", name="uq_leak_events_token_location"),
)

mail_outbox = Table(
    "mail_outbox",
    metadata,
    Column("id", Integer, primary_key=True),
    # What to send: a kind of mail and its data (JSON, encrypted for secret kinds), rendered when sent.
    Column("kind", String(32), nullable=False),
    Column("payload", Text, nullable=True),
    Column("message", Text, nullable=True),  # a finished message, for rows queued before revision 0002
    Column("dedupe_key", String(200), nullable=False, unique=True),
    Column("key_id", Integer, ForeignKey("api_keys.id"), nullable=True),
    Column("leak_event_id", Integer, ForeignKey("leak_events.id"), nullable=True),
    Column("message_id", String(200), nullable=False, unique=True),
    Column("recipient", String(320), nullable=False),
    Column("status", String(16), nullable=False, default="pending"),
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("last_error", Text, nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime, nullable=True),
    Index("ix_mail_outbox_due", "status", "next_attempt_at"),
)

key_documents = Table(
    "key_documents",  # "github_key_document" (GitHub's alone, id 1) before revision 0006
    metadata,
    Column("id", Integer, primary_key=True),
    Column("origin", String(32), nullable=False, server_default="github"),  # one row per origin
    Column("document", Text, nullable=True),
    Column("fetched_at", UTCDateTime, nullable=True),
    Column("attempted_at", UTCDateTime, nullable=True),
    Column("finished_at", UTCDateTime, nullable=True),
    Column("failed", Boolean, nullable=False, default=False),
    Index("uq_key_documents_origin", "origin", unique=True),
)

key_changes = Table(
    "key_changes",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("key_id", Integer, nullable=True),
    Column("account_id", Integer, nullable=True),
    Column("txid", BigInteger, nullable=True, index=True),
    Column("changed_at", UTCDateTime, nullable=False),
    sqlite_autoincrement=True,
)
"""One row per change to what authentication caches (a key revoked or flagged, an account's allowlist
set), written in the changing transaction; both ids empty: anything may have changed."""

dashboard_sessions = Table(
    "dashboard_sessions",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the cookie's value
    Column("email", String(320), nullable=False),  # the signed-in address, lower case
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),  # the account shown
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Index("ix_dashboard_sessions_last_seen_at", "last_seen_at"),
)

sign_in_links = Table(
    "sign_in_links",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the emailed token
    Column("email", String(320), nullable=False),
    Column("next_path", String(200), nullable=True),
    Column("created_at", UTCDateTime, nullable=False),
    Column("expires_at", UTCDateTime, nullable=False),
    Column("used_at", UTCDateTime, nullable=True),
    Index("ix_sign_in_links_expires_at", "expires_at"),
)

rate_limits = Table(
    "rate_limits",
    metadata,
    # What is limited, e.g. "sign-in-address:<sha256>"; a fixed window per bucket.
    Column("bucket", String(100), primary_key=True),
    Column("window_start", UTCDateTime, nullable=False),
    Column("hits", Integer, nullable=False),
    Index("ix_rate_limits_window_start", "window_start"),
)

key_traffic_minutes = Table(
    "key_traffic_minutes",
    metadata,
    Column("key_id", Integer, primary_key=True),
    Column("minute", Integer, primary_key=True),  # minutes since the epoch (UTC)
    Column("requests", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    Index("ix_key_traffic_minutes_minute", "minute"),
    sqlite_with_rowid=False,  # clustered by key and time (migration 0008)
)
"""Requests with each key per minute (refused: revoked, deleted or outside the allowlist), every
process's counts added up; kept for a day."""

ADDRESS = String(64).with_variant(String(64, collation="C"), "postgresql")
"""A client address, compared as bytes on PostgreSQL: cheaper than a locale's rules in the primary
key that every flush probes 100,000 times, and addresses have no locale."""

key_traffic_hours = Table(
    "key_traffic_hours",
    metadata,
    Column("key_id", Integer, primary_key=True),
    Column("hour", Integer, primary_key=True),  # hours since the epoch (UTC)
    # An IPv4 address, an IPv6 /64, or "other" once a process met more pairs than it counts apart.
    Column("address", ADDRESS, primary_key=True),
    Column("requests", Integer, nullable=False),
    Column("refused", Integer, nullable=False),
    Column("first_at", Float, nullable=False),  # seconds since the epoch
    Column("last_at", Float, nullable=False),
    Index("ix_key_traffic_hours_hour", "hour"),
    sqlite_with_rowid=False,  # clustered by key, hour and address (migration 0008)
)
"""Requests with each key per hour and client address, with the first and last of them; 90 days."""

activity = Table(
    "activity",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("account_id", Integer, ForeignKey("accounts.id"), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(32), nullable=False),
    Column("key_id", Integer, nullable=True),
    # Who: the signed-in address, "command line", or the platform that reported a leak.
    Column("actor", String(320), nullable=False),
    Column("client", String(64), nullable=True),
    Column("details", Text, nullable=False),  # JSON
    Index("ix_activity_account_id", "account_id", "id"),
    Index("ix_activity_at", "at", "id"),
)
"""What happened to an account's keys, sessions and allowlist, written in the changing transaction."""

revocation_tokens = Table(
    "revocation_tokens",
    metadata,
    Column("id", Integer, primary_key=True),
    Column("name", String(100), nullable=False),  # the self-managed GitLab instance, as its operator named it
    Column("token_hash", String(64), nullable=False, unique=True),  # SHA-256 of the pre-shared token
    Column("token_suffix", String(4), nullable=False),  # its last four characters, to tell tokens apart
    Column("created_at", UTCDateTime, nullable=False),
    Column("last_used_at", UTCDateTime, nullable=True),
    Column("revoked_at", UTCDateTime, nullable=True),
)
"""The Token Revocation API's pre-shared tokens, one or more per instance (several while rotating)."""
