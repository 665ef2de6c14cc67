"""Configuration: one frozen object, built from the environment once, passed explicitly."""

from __future__ import annotations

import ipaddress
import math
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from partner_endpoint.networks import parse_networks

GITHUB_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
"""GitHub's batches are kilobytes. 2 MiB holds a batch of about 12,000 entries of 175 bytes (a
10,000-key batch, the size bench/alert_batch.py measures, is 1.75 MB): room for a mass leak, while
a body is read only once its key identifier is known, so 40 connections cost at most 80 MiB."""

LeakPolicy = Literal["revoke", "flag"]


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the service refuses to start."""


def plain_http_loopback(url: str) -> bool:
    """Whether ``url`` is ``http://`` on this machine: the one case where cookies may travel without TLS."""
    parts = urlsplit(url)
    if parts.scheme != "http" or not parts.hostname:
        return False
    if parts.hostname == "localhost":
        return True
    try:
        return ipaddress.ip_address(parts.hostname).is_loopback
    except ValueError:
        return False


def _check_dashboard_url(url: str) -> None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018  (raises ValueError for a bad port)
    except ValueError as exc:
        raise SettingsError(f"SOUNDPIECE_DASHBOARD_URL: {exc}") from None
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError("SOUNDPIECE_DASHBOARD_URL must be an http:// or https:// URL with a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise SettingsError("SOUNDPIECE_DASHBOARD_URL must not hold a user name, query or fragment")
    if parts.scheme == "http" and not plain_http_loopback(url):
        raise SettingsError(
            "SOUNDPIECE_DASHBOARD_URL must be https:// unless its host is loopback "
            "(sign-in cookies are sent over TLS only)"
        )


def _switch(value: str) -> bool:
    return value.lower() not in ("0", "false", "no", "off")


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = field(default="sqlite:///soundpiece.db", repr=False)
    """May hold the database password (``postgresql+psycopg://user:password@host/db``)."""
    github_keys_url: str = GITHUB_KEYS_URL
    github_token: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    """Fernet key(s), comma-separated, newest first; encrypts signing secrets at rest."""
    smtp_url: str | None = field(default=None, repr=False)
    """May hold the SMTP password (``smtp://user:password@host``)."""
    smtp_ca_file: str | None = None
    mail_from: str = "Soundpiece Security <security@soundpiece.invalid>"
    mail_dir: Path = Path("outbox")
    """Where mail goes as ``.eml`` files when no SMTP server is configured."""
    leak_policy: LeakPolicy = "revoke"
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES
    key_refetch_interval: float = 60.0
    key_fetch_timeout: float = 10.0
    trusted_proxy_header: str | None = None
    trusted_proxies: tuple[str, ...] = ("127.0.0.1/32", "::1/128")
    last_used_interval: float = 60.0
    key_change_delay: float = 1.0
    """Longest time a key change (revocation, allowlist) made by another process may go unseen here."""
    auth_cache_size: int = 50_000
    """API keys cached per process for authentication (0: every request reads the database)."""
    auth_failure_limit: int = 30
    """Failed API authentications a client may make in a row before 429 (0: no limit)..."""
    auth_failure_window: float = 60.0
    """...and the time in which it earns that many back."""
    run_mail_worker: bool = True
    mail_poll_interval: float = 5.0
    mail_max_attempts: int = 12
    log_level: str = "INFO"
    docs_url: str = "https://docs.soundpiece.invalid/api/keys"
    dashboard: bool = True
    """Serve the account owners' dashboard at ``/dashboard``; off leaves the webhook receiver and API."""
    dashboard_url: str = "http://127.0.0.1:8000/dashboard"
    """The dashboard's public address, used in the links we email (sign-in, leak notices)."""
    session_idle_timeout: float = 30 * 60.0
    session_lifetime: float = 12 * 3600.0
    sign_in_limit_per_address: int = 5
    """Sign-in links requested per hour for one email address."""
    sign_in_limit_per_client: int = 20
    """Sign-in links requested per hour from one client address (an IPv6 /64 counts as one)."""

    # --- the HTTP server (partner_endpoint/server): bounds per connection, per worker process -----
    max_head_bytes: int = 16 * 1024
    """Request line, headers (and chunk framing, trailers) of one request; more gets 431."""
    max_headers: int = 100
    """Header lines in one request; more gets 431."""
    request_timeout: float = 10.0
    """Seconds from a connection's first byte (or its opening) until the whole request has arrived."""
    keep_alive_timeout: float = 5.0
    """Seconds an idle connection is kept open after a response."""
    max_connections: int = 1000
    """Open connections per worker process; the next one is answered 503 and closed."""
    metrics_token: str | None = field(default=None, repr=False)
    """When set, ``/metrics`` answers only ``Authorization: Bearer <token>``."""
    metrics_port: int | None = None
    """When set, ``/metrics`` is served on this port only, not on the service port."""

    # --- the alert endpoint (partner_endpoint/github): failed requests per client ------------------
    alert_failure_limit: int = 30
    """Failed alert requests (bad or missing signature, oversize body) a client may make before 429,
    per worker process; 0 turns the limit off."""
    alert_failure_window: float = 60.0
    """Seconds in which a client's budget of failed alert requests refills."""
    allow_key_file: bool = True
    """Without ``SOUNDPIECE_SECRET_KEY``, keep a generated key in a file beside a SQLite database
    (development). The container image turns it off: there the file would share the database's volume."""

    def __post_init__(self) -> None:
        if self.leak_policy not in ("revoke", "flag"):
            raise SettingsError(
                f"SOUNDPIECE_LEAK_POLICY must be 'revoke' or 'flag', not {self.leak_policy!r}"
            )
        if self.max_body_bytes <= 0:
            raise SettingsError("SOUNDPIECE_MAX_BODY_BYTES must be positive")
        try:
            parse_networks(self.trusted_proxies)
        except ValueError as exc:
            raise SettingsError(f"SOUNDPIECE_TRUSTED_PROXIES: {exc}") from None
        if not 0 < self.key_change_delay < math.inf:
            raise SettingsError("SOUNDPIECE_KEY_CHANGE_DELAY must be positive")
        if self.auth_cache_size < 0 or self.auth_failure_limit < 0:
            raise SettingsError("SOUNDPIECE_AUTH_CACHE_SIZE and SOUNDPIECE_AUTH_FAILURE_LIMIT must be >= 0")
        if not 0 < self.auth_failure_window < math.inf:
            raise SettingsError("SOUNDPIECE_AUTH_FAILURE_WINDOW must be positive")
        if self.smtp_url and not self.smtp_url.startswith(("smtp://", "smtps://")):
            raise SettingsError("SOUNDPIECE_SMTP_URL must start with smtp:// or smtps://")
        if self.alert_failure_limit < 0 or not 0 < self.alert_failure_window < math.inf:
            raise SettingsError("SOUNDPIECE_ALERT_FAILURE_LIMIT must be >= 0, _WINDOW positive")
        _check_dashboard_url(self.dashboard_url)
        self._check_bounds()

    def _check_bounds(self) -> None:
        for name, attr, _kind, largest in _BOUNDS:
            number = getattr(self, attr)
            if not 0 < number <= largest:  # also refuses NaN
                raise SettingsError(
                    f"SOUNDPIECE_{name} must be above 0 and at most {largest}, not {number!r}"
                )
        if self.metrics_port is not None and not 0 < self.metrics_port < 65536:
            raise SettingsError(f"SOUNDPIECE_METRICS_PORT must be a TCP port, not {self.metrics_port}")
        token = self.metrics_token
        if token is not None and (
            len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token
        ):
            raise SettingsError(
                "SOUNDPIECE_METRICS_TOKEN must be 16 or more printable ASCII characters, no spaces"
            )

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Build settings from ``SOUNDPIECE_*`` variables; unset ones keep their defaults."""
        env = os.environ if env is None else env

        def get(name: str) -> str | None:
            value = env.get(f"SOUNDPIECE_{name}", "").strip()
            return value or None

        values: dict[str, object] = {}
        for name, attr in (
            ("DATABASE_URL", "database_url"),
            ("GITHUB_KEYS_URL", "github_keys_url"),
            ("GITHUB_TOKEN", "github_token"),
            ("SECRET_KEY", "secret_key"),
            ("SMTP_URL", "smtp_url"),
            ("SMTP_CA_FILE", "smtp_ca_file"),
            ("MAIL_FROM", "mail_from"),
            ("LEAK_POLICY", "leak_policy"),
            ("TRUSTED_PROXY_HEADER", "trusted_proxy_header"),
            ("LOG_LEVEL", "log_level"),
            ("DOCS_URL", "docs_url"),
            ("DASHBOARD_URL", "dashboard_url"),
            ("METRICS_TOKEN", "metrics_token"),
        ):
            if (value := get(name)) is not None:
                values[attr] = value
        if (value := get("MAIL_DIR")) is not None:
            values["mail_dir"] = Path(value)
        if (value := get("TRUSTED_PROXIES")) is not None:
            values["trusted_proxies"] = tuple(p.strip() for p in value.split(",") if p.strip())
        if (value := get("MAIL_WORKER")) is not None:
            values["run_mail_worker"] = _switch(value)
        if (value := get("DASHBOARD")) is not None:
            values["dashboard"] = _switch(value)
        if (value := get("ALLOW_KEY_FILE")) is not None:
            values["allow_key_file"] = _switch(value)
        for name, attr, kind in (
            ("MAX_BODY_BYTES", "max_body_bytes", int),
            ("KEY_REFETCH_INTERVAL", "key_refetch_interval", float),
            ("LAST_USED_INTERVAL", "last_used_interval", float),
            ("KEY_CHANGE_DELAY", "key_change_delay", float),
            ("AUTH_CACHE_SIZE", "auth_cache_size", int),
            ("AUTH_FAILURE_LIMIT", "auth_failure_limit", int),
            ("AUTH_FAILURE_WINDOW", "auth_failure_window", float),
            ("MAIL_POLL_INTERVAL", "mail_poll_interval", float),
            ("MAIL_MAX_ATTEMPTS", "mail_max_attempts", int),
            ("ALERT_FAILURE_LIMIT", "alert_failure_limit", int),
            ("ALERT_FAILURE_WINDOW", "alert_failure_window", float),
            ("METRICS_PORT", "metrics_port", int),
            *((name, attr, kind) for name, attr, kind, _largest in _BOUNDS),  # checked in __post_init__
        ):
            if (value := get(name)) is not None:
                try:
                    values[attr] = kind(value)
                except ValueError as exc:
                    raise SettingsError(f"SOUNDPIECE_{name}: {exc}") from None
        return cls(**values)  # type: ignore[arg-type]


# --- the HTTP server's settings -------------------------------------------------------------------

_DAY = 86_400.0
_SERVER_BOUNDS: tuple[tuple[str, str, type[int] | type[float], float], ...] = (
    # variable, attribute, type, largest value (timers beyond a day are a typo, and overflow uvloop)
    ("MAX_HEAD_BYTES", "max_head_bytes", int, 2**31),
    ("MAX_HEADERS", "max_headers", int, 2**31),
    ("REQUEST_TIMEOUT", "request_timeout", float, _DAY),
    ("KEEP_ALIVE_TIMEOUT", "keep_alive_timeout", float, _DAY),
    ("MAX_CONNECTIONS", "max_connections", int, 2**31),
)
_DASHBOARD_BOUNDS: tuple[tuple[str, str, type[int] | type[float], float], ...] = (
    ("SESSION_IDLE_TIMEOUT", "session_idle_timeout", float, 30 * _DAY),
    ("SESSION_LIFETIME", "session_lifetime", float, 30 * _DAY),
    ("SIGN_IN_LIMIT_PER_ADDRESS", "sign_in_limit_per_address", int, 2**31),
    ("SIGN_IN_LIMIT_PER_CLIENT", "sign_in_limit_per_client", int, 2**31),
)
_BOUNDS = (*_SERVER_BOUNDS, *_DASHBOARD_BOUNDS)
