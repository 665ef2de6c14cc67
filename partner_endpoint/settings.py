"""Configuration: each setting declared once, read from ``SOUNDPIECE_*`` variables, passed explicitly.

A setting is a field of :class:`Settings` whose metadata is a :class:`Spec`: what it means, its
bounds, its group. Everything else is derived from that one declaration: the variable's name
(``SOUNDPIECE_`` and the field's name in capitals), parsing by the field's type, errors that name
the variable, and the reference (``docs/configuration.md``, ``soundpiece-partner config``), which
a test keeps in step with this file.

Where the service keeps its files does not depend on the folder it is started from: everything
lives in ``SOUNDPIECE_DATA_DIR`` (the platform's per-user data folder by default; ``/data`` in the
container image), so ``leaks list`` run from another folder reads the same database as ``serve``.
"""

from __future__ import annotations

import ipaddress
import math
import os
import types
from collections.abc import Callable, Iterator, Mapping
from dataclasses import Field, dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any, Literal, Union, get_args, get_origin, get_type_hints
from urllib.parse import urlsplit

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from partner_endpoint.domain.networks import parse_networks
from partner_endpoint.domain.origins import ORIGINS

PREFIX = "SOUNDPIECE_"
GITHUB_KEYS_URL = "https://api.github.com/meta/public_keys/secret_scanning"
DEPS_DEV_KEYS_URL = "https://storage.googleapis.com/depsdev-gcp-public-keys/secret_scanning"
"""As PyPI's Warehouse fetches it (warehouse/integrations/secrets/config.py)."""
DEFAULT_MAX_BODY_BYTES = 2 * 1024 * 1024
"""GitHub's batches are kilobytes. 2 MiB holds a batch of about 12,000 entries of 175 bytes (a
10,000-key batch, the size bench/alert_batch.py measures, is 1.75 MB): room for a mass leak, while
a body is read only once its key identifier is known, so 40 connections cost at most 80 MiB."""
_DAY = 86_400.0
_LARGEST = 2**31 - 1

LeakPolicy = Literal["revoke", "flag"]
_SWITCH = {
    "1": True,
    "true": True,
    "yes": True,
    "on": True,
    "0": False,
    "false": False,
    "no": False,
    "off": False,
}


class SettingsError(ValueError):
    """A configuration value is missing or invalid; the service refuses to start."""


@dataclass(frozen=True, slots=True)
class Spec:
    """How one setting is read, checked and documented."""

    help: str
    group: str
    low: float | None = None
    """Smallest value allowed."""
    above: float | None = None
    """Values must be greater than this."""
    high: float | None = None
    """Largest value allowed (every number has one: timers beyond a day are typos, and overflow uvloop)."""
    check: Callable[[Any], None] | None = None
    """Raises ValueError saying what is wrong with a value the type and bounds accept."""
    shown_default: str | None = None
    """The default as documented, where it is derived (from the data folder) or long."""
    secret: bool = False
    """Never shown whole: not in ``repr``; ``config`` shows it through :attr:`shown` or not at all."""
    shown: Callable[[Any], str] | None = None
    """How ``config`` shows a secret that may be shown in part (a URL without its password)."""


def _setting(default: Any, help: str, group: str, *, secret: bool = False, **spec: Any) -> Any:
    return field(
        default=default, repr=not secret, metadata={"spec": Spec(help, group, secret=secret, **spec)}
    )


# --- checks beyond type and bounds ------------------------------------------------------------------


def plain_http_loopback(url: str) -> bool:
    """Whether ``url`` is ``http://`` on this machine: the one case where cookies may travel without TLS."""
    parts = urlsplit(url)
    return parts.scheme == "http" and is_loopback_host(parts.hostname or "")


def is_loopback_host(host: str) -> bool:
    """``localhost`` or a loopback address (``127.0.0.0/8``, ``::1``)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _dashboard_url(url: str) -> None:
    parts = urlsplit(url)
    parts.port  # noqa: B018  (raises ValueError for a bad port)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL with a host")
    if parts.username or parts.password or parts.query or parts.fragment:
        raise ValueError("must not hold a user name, query or fragment")
    if parts.scheme == "http" and not plain_http_loopback(url):
        raise ValueError(
            "must be https:// unless its host is loopback (sign-in cookies are sent over TLS only)"
        )


def _smtp_url(url: str | None) -> None:
    if url is not None and not url.startswith(("smtp://", "smtps://")):
        raise ValueError("must start with smtp:// or smtps://")


def _trusted_proxies(values: tuple[str, ...]) -> None:
    parse_networks(values)


def _metrics_token(token: str | None) -> None:
    if token is not None and (
        len(token) < 16 or not token.isascii() or not token.isprintable() or " " in token
    ):
        raise ValueError("must be 16 or more printable ASCII characters, no spaces")


def _http_url(url: str | None) -> None:
    if url is not None and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).hostname):
        raise ValueError("must be an http:// or https:// URL with a host")


def _origins_have_keys(settings: Settings) -> None:
    """Each origin that is on has a key document to verify its reports by (or trusts the test signer)."""
    for origin in ORIGINS:
        if (
            getattr(settings, origin.switch)
            and not getattr(settings, origin.keys_url)
            and not settings.test_signer
        ):
            raise SettingsError(
                f"{PREFIX}{origin.switch.upper()} is on: set {PREFIX}{origin.keys_url.upper()} to the key "
                f"document {origin.platform} names (or {PREFIX}TEST_SIGNER=on, to try it locally)"
            )


def without_password(url: str) -> str:
    """``url`` with any password replaced by ``***``, for logs and ``config``."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{parts.username or ''}:***@{host}").geturl()


def _database_url(url: str) -> None:
    if url:
        try:
            make_url(url)
        except ArgumentError:
            raise ValueError("not a database URL SQLAlchemy can read") from None


# --- the settings -------------------------------------------------------------------------------

_STORAGE = "Storage"
_ALERTS = "Leak alerts"
_MAIL = "Mail"
_API = "API authentication"
_DASHBOARD = "Dashboard"
_SERVER = "HTTP server (per worker process)"
_METRICS = "Metrics and logs"


@dataclass(frozen=True, slots=True)
class Settings:
    # --- storage -------------------------------------------------------------------------------
    data_dir: Path | None = _setting(
        None,
        "The folder for the SQLite database, its key file, `.eml` mail and the test signer: the same "
        "whatever folder a command runs in.",
        _STORAGE,
        shown_default="the per-user data folder (`~/.local/share/soundpiece` on Linux); image: `/data`",
    )
    database_url: str = _setting(
        "",
        "SQLAlchemy URL of the database. PostgreSQL: `postgresql+psycopg://user:pass@host/db`. "
        "Only `serve` and `migrate` create a database; every other command refuses one that does not exist.",
        _STORAGE,
        secret=True,
        shown=without_password,
        check=_database_url,
        shown_default="`sqlite:///<data dir>/soundpiece.db`",
    )
    secret_key: str | None = _setting(
        None,
        "Fernet key(s), comma-separated, newest first (older ones still decrypt: rotation). Encrypts "
        "signing secrets at rest. Required with PostgreSQL and in the container image; with a local "
        "SQLite file and no key, a key is generated into `<database>.key` (mode 0600) with a warning, "
        "for development only, and only while the database holds no secret. Commands that use secrets "
        "refuse to start (exit 2) when the key cannot decrypt the oldest and the newest stored secret.",
        _STORAGE,
        secret=True,
    )
    allow_key_file: bool = _setting(
        True,
        "`off`: never use or generate `<database>.key`; `SOUNDPIECE_SECRET_KEY` is then required for "
        "SQLite too (the image turns it off: there the file would share the database's volume).",
        _STORAGE,
        shown_default="`on` (image: `off`)",
    )
    # --- leak alerts -----------------------------------------------------------------------------
    leak_policy: LeakPolicy = _setting(
        "revoke",
        "`revoke`: a reported key and its signing secret stop working at once; `flag`: the key keeps "
        "working and is marked leaked.",
        _ALERTS,
    )
    github_keys_url: str = _setting(GITHUB_KEYS_URL, "GitHub's public key document.", _ALERTS)
    github_token: str | None = _setting(
        None,
        "Optional GitHub token (no scopes needed): 5,000 instead of 60 key fetches an hour.",
        _ALERTS,
        secret=True,
    )
    key_refetch_interval: float = _setting(
        60.0,
        "Seconds: at most one fetch of a key document per interval, for all processes and replicas "
        "on the database together.",
        _ALERTS,
        above=0,
        high=_DAY,
    )
    key_fetch_timeout: float = _setting(
        10.0, "Seconds a key document fetch may take in all.", _ALERTS, above=0, high=300
    )
    max_body_bytes: int = _setting(
        DEFAULT_MAX_BODY_BYTES,
        "Larger alert bodies are refused with 413. GitHub's batches are kilobytes; 2 MiB holds about "
        "12,000 entries.",
        _ALERTS,
        low=1,
        high=_LARGEST,
    )
    alert_failure_limit: int = _setting(
        30,
        "Failed alert requests (bad or missing signature, oversize body) a client may make before 429, "
        "per worker process; `0`: no limit.",
        _ALERTS,
        low=0,
        high=_LARGEST,
    )
    alert_failure_window: float = _setting(
        60.0,
        "Seconds in which a client's budget of failed alert requests refills.",
        _ALERTS,
        above=0,
        high=_DAY,
    )
    test_signer: bool = _setting(
        False,
        "Also trust the local test signer of `soundpiece-partner test-alert` (a P-256 key kept in the data "
        "folder), to try the whole alert loop without GitHub. `serve` refuses to listen beyond loopback "
        "while it is on, and warns at every start.",
        _ALERTS,
    )
    # --- leak report origins (partner_endpoint/domain/origins.py; docs/leak-report-origins.md) ---
    github_alerts: bool = _setting(
        True, "GitHub's secret scanning alerts, at `POST /v1/secret-scanning/github`.", _ALERTS
    )
    depsdev_alerts: bool = _setting(
        False,
        "deps.dev's leak reports (credentials found in the packages of public registries), at "
        "`POST /v1/secret-scanning/deps.dev`. Off until deps.dev has been given that address: until "
        "then nothing genuine arrives there, and a route that is off cannot be attacked.",
        _ALERTS,
    )
    depsdev_keys_url: str = _setting(
        DEPS_DEV_KEYS_URL, "deps.dev's public key document.", _ALERTS, check=_http_url
    )
    gitlab_alerts: bool = _setting(
        False,
        "GitLab.com's leak reports (its automatic response to leaked secrets), at "
        "`POST /v1/secret-scanning/gitlab`. Off until GitLab has onboarded us: it gives each partner the "
        "address of its key document then, and `SOUNDPIECE_GITLAB_KEYS_URL` is required while this is on "
        "(unless the test signer is on and alone to be trusted).",
        _ALERTS,
    )
    gitlab_keys_url: str | None = _setting(
        None,
        "GitLab's public key document, as GitLab names it at onboarding (it publishes none).",
        _ALERTS,
        check=_http_url,
    )
    revocation_api: bool = _setting(
        False,
        "The Token Revocation API that self-managed GitLab instances call: `GET /v1/revocable_token_types` "
        "and `POST /v1/revoke_tokens`, for the instances given a token by `soundpiece-partner "
        "revocation-tokens create`. Off until an instance is set up to call it.",
        _ALERTS,
    )
    revocation_rate_limit: int = _setting(
        300,
        "Requests one self-managed GitLab instance (one revocation token) may make per "
        "`SOUNDPIECE_REVOCATION_RATE_WINDOW`, for all processes and replicas together; then 429.",
        _ALERTS,
        low=1,
        high=_LARGEST,
    )
    revocation_rate_window: float = _setting(
        60.0,
        "Seconds in which an instance's revocation API requests are counted.",
        _ALERTS,
        above=0,
        high=_DAY,
    )
    # --- mail ------------------------------------------------------------------------------------
    smtp_url: str | None = _setting(
        None,
        "`smtp://user:pass@host:587` (STARTTLS; required when a user is given) or "
        "`smtps://user:pass@host:465` (implicit TLS); percent-encode special characters. Without it, "
        "mail is written as `.eml` files to the mail folder, never dropped.",
        _MAIL,
        secret=True,
        shown=without_password,
        check=_smtp_url,
    )
    smtp_ca_file: str | None = _setting(
        None, "CA bundle for the SMTP server's certificate.", _MAIL, shown_default="the system's CAs"
    )
    mail_from: str = _setting(
        "Soundpiece Security <security@soundpiece.invalid>", "Sender of our mail.", _MAIL
    )
    mail_dir: Path | None = _setting(
        None,
        "Folder for `.eml` files when no SMTP server is configured.",
        _MAIL,
        shown_default="`<data dir>/outbox`",
    )
    mail_worker: bool = _setting(
        True,
        "`off`: `serve` sends no mail itself (run `soundpiece-partner mail-worker` instead).",
        _MAIL,
    )
    mail_poll_interval: float = _setting(
        5.0, "Seconds between the mail worker's looks at the outbox.", _MAIL, above=0, high=_DAY
    )
    mail_max_attempts: int = _setting(
        12,
        "Delivery attempts (backoff 30 s doubling to 1 h) before a mail stays `failed` for an operator.",
        _MAIL,
        low=1,
        high=1000,
    )
    docs_url: str = _setting(
        "https://docs.soundpiece.invalid/api/keys",
        "The API key documentation, linked from mail and the dashboard.",
        _MAIL,
    )
    # --- API authentication ----------------------------------------------------------------------
    trusted_proxy_header: str | None = _setting(
        None,
        "For example `X-Forwarded-For`: where trusted proxies put the client address (allowlists, rate "
        "limits). Read from the right, past every trusted proxy. Without it the peer is the client: "
        "behind a TLS proxy every user is then one client, sharing one budget.",
        _API,
    )
    trusted_proxies: tuple[str, ...] = _setting(
        ("127.0.0.1/32", "::1/128"),
        "Proxies (addresses or ranges, comma-separated) whose header entries are believed.",
        _API,
        check=_trusted_proxies,
    )
    key_change_delay: float = _setting(
        1.0,
        "Seconds: the longest a key revoked (or an allowlist changed) by another process or replica is "
        "still accepted here.",
        _API,
        above=0,
        high=_DAY,
    )
    auth_cache_size: int = _setting(
        50_000,
        "API keys cached per process for authentication (`0`: every request reads the database).",
        _API,
        low=0,
        high=_LARGEST,
    )
    auth_failure_limit: int = _setting(
        30,
        "Failed API authentications a client may make before 429 (`0`: no limit).",
        _API,
        low=0,
        high=_LARGEST,
    )
    auth_failure_window: float = _setting(
        60.0, "Seconds in which a client earns its failed authentications back.", _API, above=0, high=_DAY
    )
    traffic_flush_interval: float = _setting(
        10.0,
        "Seconds between the background writes of each process's traffic counts and its keys' last use: "
        "how fresh the dashboard's traffic and \"last used\" are. Nothing is written on a request's path.",
        _API,
        above=0,
        high=300,
    )
    traffic_minutes_kept: float = _setting(
        86_400.0,
        "Seconds per-minute traffic is kept (the last hour's chart, the day's totals).",
        _API,
        above=0,
        high=30 * _DAY,
    )
    traffic_hours_kept: float = _setting(
        90 * 86_400.0,
        "Seconds per-hour traffic by client address is kept (the week's chart, who used a key, use after "
        "a leak).",
        _API,
        above=0,
        high=3650 * _DAY,
    )
    traffic_max_pairs: int = _setting(
        200_000,
        "(key, address, minute) counts each process keeps between writes; past it a key's further addresses "
        'count as "other" (and past twice it, further keys): memory stays bounded under any traffic.',
        _API,
        low=1000,
        high=10_000_000,
    )
    # --- dashboard -------------------------------------------------------------------------------
    dashboard: bool = _setting(
        True,
        "`off` serves the alert receiver and the API alone: no `/dashboard`, and mail names the "
        "dashboard without a link.",
        _DASHBOARD,
    )
    dashboard_url: str = _setting(
        "http://127.0.0.1:8000/dashboard",
        "The dashboard's public address, used in the links we mail. `https://` unless its host is "
        "loopback; session cookies are `Secure` (and `__Host-`) unless it is plain http on loopback.",
        _DASHBOARD,
        check=_dashboard_url,
    )
    session_idle_timeout: float = _setting(
        30 * 60.0,
        "Seconds without a request after which a dashboard session ends.",
        _DASHBOARD,
        above=0,
        high=30 * _DAY,
    )
    session_lifetime: float = _setting(
        12 * 3600.0,
        "Seconds after sign-in at which a session ends however active.",
        _DASHBOARD,
        above=0,
        high=30 * _DAY,
    )
    sign_in_limit_per_address: int = _setting(
        5, "Sign-in links one email address may request per hour.", _DASHBOARD, low=1, high=_LARGEST
    )
    sign_in_limit_per_client: int = _setting(
        20,
        "Sign-in links one client may request per hour (an IPv4 address or IPv6 /64).",
        _DASHBOARD,
        low=1,
        high=_LARGEST,
    )
    # --- the HTTP server ---------------------------------------------------------------------------
    max_head_bytes: int = _setting(
        16 * 1024,
        "Request line, headers (and chunk framing, trailers) of one request; more gets 431.",
        _SERVER,
        low=1,
        high=_LARGEST,
    )
    max_headers: int = _setting(
        100, "Header lines in one request; more gets 431.", _SERVER, low=1, high=_LARGEST
    )
    request_timeout: float = _setting(
        10.0,
        "Seconds from a connection's opening (or a request's first byte) until the whole request has "
        "arrived; then 408.",
        _SERVER,
        above=0,
        high=_DAY,
    )
    keep_alive_timeout: float = _setting(
        5.0,
        "Seconds an idle connection is kept open after a response (behind a load balancer: above its "
        "idle timeout).",
        _SERVER,
        above=0,
        high=_DAY,
    )
    max_connections: int = _setting(
        1000,
        "Open connections per worker; the next one is answered 503 and closed.",
        _SERVER,
        low=1,
        high=_LARGEST,
    )
    # --- metrics and logs --------------------------------------------------------------------------
    metrics_token: str | None = _setting(
        None,
        "`/metrics` answers only `Authorization: Bearer <token>` (16+ printable ASCII characters).",
        _METRICS,
        secret=True,
        check=_metrics_token,
    )
    metrics_port: int | None = _setting(
        None,
        "`serve` also listens on this port (same host) and serves `/metrics` there only. With neither "
        "this nor a token, `/metrics` is not served: its counters tell who has an account.",
        _METRICS,
        low=1,
        high=65535,
    )
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = _setting(
        "INFO", "Lowest level of the JSON log lines written to stderr.", _METRICS
    )

    def __post_init__(self) -> None:
        data_dir = self.data_dir if self.data_dir is not None else default_data_dir()
        object.__setattr__(self, "data_dir", data_dir)
        if not self.database_url:
            object.__setattr__(self, "database_url", f"sqlite:///{data_dir / 'soundpiece.db'}")
        if self.mail_dir is None:
            object.__setattr__(self, "mail_dir", data_dir / "outbox")
        for setting in _declared():
            _check(setting, getattr(self, setting.name))
        _origins_have_keys(self)

    @property
    def data(self) -> Path:
        """:attr:`data_dir`, resolved."""
        assert self.data_dir is not None
        return self.data_dir

    @property
    def outbox(self) -> Path:
        """:attr:`mail_dir`, resolved."""
        assert self.mail_dir is not None
        return self.mail_dir

    @property
    def test_signer_file(self) -> Path:
        return self.data / "test-signer.pem"

    @property
    def shown_database(self) -> str:
        """The database URL without its password, for logs and messages."""
        return without_password(self.database_url)

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """Settings from ``SOUNDPIECE_*`` variables; unset or empty ones keep their defaults."""
        env = os.environ if env is None else env
        values: dict[str, Any] = {}
        for setting in _declared():
            text = env.get(setting.variable, "").strip()
            if text:
                try:
                    values[setting.name] = setting.parse(text)
                except ValueError as exc:
                    raise SettingsError(f"{setting.variable}: {exc}") from None
        return cls(**values)


def default_data_dir() -> Path:
    """The platform's per-user data folder (platformdirs: XDG on Linux, Application Support on macOS)."""
    from platformdirs import user_data_path

    return user_data_path("soundpiece", appauthor=False)


# --- derived from the declaration ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Declared:
    name: str
    variable: str
    spec: Spec
    default: Any
    parse: Callable[[str], Any]
    kind: str
    """The type in words, for the reference."""
    choices: tuple[str, ...] = ()
    """A ``Literal`` setting's values."""


@cache
def _declared() -> tuple[Declared, ...]:
    hints = get_type_hints(Settings)
    return tuple(_declare(f, hints[f.name]) for f in fields(Settings))


def declared() -> Iterator[Declared]:
    """Every setting, in the order declared."""
    return iter(_declared())


def _declare(f: Field[Any], hint: Any) -> Declared:
    base = _without_none(hint)
    parse, kind = _parser(base)
    choices = get_args(base) if get_origin(base) is Literal else ()
    return Declared(f.name, PREFIX + f.name.upper(), f.metadata["spec"], f.default, parse, kind, choices)


def _without_none(hint: Any) -> Any:
    """``X`` of ``X | None``; any other hint as it is."""
    if get_origin(hint) in (Union, types.UnionType):
        args = [a for a in get_args(hint) if a is not type(None)]
        if len(args) == 1:
            return args[0]
    return hint


def _parser(kind: Any) -> tuple[Callable[[str], Any], str]:
    if kind is bool:
        return _switch, "on/off"
    if kind is int:
        return _whole_number, "whole number"
    if kind is float:
        return _number, "number"
    if kind is str:
        return str, "text"
    if kind is Path:
        return Path, "path"
    if get_origin(kind) is Literal:
        choices = get_args(kind)
        return _one_of(choices), " / ".join(choices)
    if get_origin(kind) is tuple:
        return _comma_list, "comma-separated list"
    raise TypeError(f"no parser for settings of type {kind!r}")


def _switch(text: str) -> bool:
    try:
        return _SWITCH[text.lower()]
    except KeyError:
        raise ValueError(f"must be on or off (also true/false, yes/no, 1/0), not {text!r}") from None


def _whole_number(text: str) -> int:
    try:
        return int(text)
    except ValueError:
        raise ValueError(f"not a whole number: {text!r}") from None


def _number(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        raise ValueError(f"not a number: {text!r}") from None


def _one_of(choices: tuple[str, ...]) -> Callable[[str], str]:
    def parse(text: str) -> str:
        for choice in choices:
            if text.lower() == choice.lower():
                return choice
        raise ValueError(f"must be one of {', '.join(repr(c) for c in choices)}, not {text!r}")

    return parse


def _comma_list(text: str) -> tuple[str, ...]:
    return tuple(part.strip() for part in text.split(",") if part.strip())


def _check(setting: Declared, value: Any) -> None:
    spec = setting.spec
    if value is None:
        return
    if setting.choices and value not in setting.choices:
        choices = ", ".join(map(repr, setting.choices))
        raise SettingsError(f"{setting.variable} must be one of {choices}, not {value!r}")
    if isinstance(value, int | float) and not isinstance(value, bool):
        problem = _outside(value, spec)
        if problem:
            raise SettingsError(f"{setting.variable} must be {problem}, not {value!r}")
    if spec.check is not None:
        try:
            spec.check(value)
        except ValueError as exc:
            raise SettingsError(f"{setting.variable}: {exc}") from None


def _outside(value: float, spec: Spec) -> str | None:
    """Words for the allowed range if ``value`` is outside it (NaN always is), else None."""
    ok = not math.isnan(value)
    ok = ok and (spec.low is None or value >= spec.low)
    ok = ok and (spec.above is None or value > spec.above)
    ok = ok and (spec.high is None or value <= spec.high)
    if ok:
        return None
    parts = []
    if spec.low is not None:
        parts.append(f"at least {spec.low:g}")
    if spec.above is not None:
        parts.append(f"above {spec.above:g}")
    if spec.high is not None:
        parts.append(f"at most {spec.high:g}")
    return " and ".join(parts)


# --- the reference --------------------------------------------------------------------------------


def shown_default(setting: Declared) -> str:
    """The default as the reference shows it."""
    if setting.spec.shown_default is not None:
        return setting.spec.shown_default
    value = setting.default
    if value is None:
        return "none"
    return f"`{shown_value(value)}`"


def shown_value(value: Any) -> str:
    """A value as a variable would hold it."""
    if isinstance(value, bool):
        return "on" if value else "off"
    if isinstance(value, float):
        return f"{value:g}"
    if isinstance(value, tuple):
        return ",".join(value)
    return str(value)


def reference() -> str:
    """Every setting as Markdown tables, one per group: ``docs/configuration.md`` holds exactly this."""
    out: list[str] = []
    group = None
    for setting in declared():
        if setting.spec.group != group:
            group = setting.spec.group
            out += ["", f"## {group}", "", "| variable | default | meaning |", "|---|---|---|"]
        meaning = setting.spec.help.replace("|", "\\|")
        out.append(f"| `{setting.variable}` | {shown_default(setting)} | {meaning} |")
    return "\n".join(out).lstrip("\n") + "\n"


def effective(settings: Settings, env: Mapping[str, str] | None = None) -> list[tuple[str, str, str]]:
    """(variable, value as shown, ``set``/``default``) for each setting: what ``config`` prints."""
    env = os.environ if env is None else env
    rows = []
    for setting in declared():
        value = getattr(settings, setting.name)
        if value is None:
            shown = "none"
        elif setting.spec.secret:
            shown = setting.spec.shown(value) if setting.spec.shown else "(set)"
        else:
            shown = shown_value(value)
        source = "set" if env.get(setting.variable, "").strip() else "default"
        rows.append((setting.variable, shown, source))
    return rows
