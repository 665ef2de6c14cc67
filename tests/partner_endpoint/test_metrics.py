"""``/metrics`` behind a token, the metrics registry's multiprocess guard, the server's settings.

Across real worker processes and on a port of its own: ``test_server_bounds.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from prometheus_client import Counter, Gauge

from partner_endpoint.ops.metrics import METRICS, Metrics
from partner_endpoint.settings import Settings, SettingsError
from tests.support.partner import TestClient
from tests.support.services import ON_SQLITE

TOKEN = "scrape-" + "k" * 25


@ON_SQLITE
def test_without_a_token_or_a_port_metrics_are_not_served(make_client: Callable[..., TestClient]) -> None:
    """Its mail counters would tell a stranger which addresses have accounts (a sign-in request for
    one moves them): off unless the operator chose who may read it."""
    client = make_client(metrics_token=None, metrics_port=None)
    response = client.get("/metrics")
    assert response.status_code == 404
    assert "soundpiece_" not in response.text


@ON_SQLITE
@pytest.mark.parametrize(
    ("authorization", "status"),
    [
        (None, 401),
        ("", 401),
        ("Bearer", 401),
        (f"Basic {TOKEN}", 401),
        (f"Bearer {TOKEN[:-1]}", 401),
        (f"Bearer {TOKEN}x", 401),
        (f"Bearer {TOKEN.upper()}", 401),
        (f"Bearer {TOKEN}", 200),
        (f"bearer   {TOKEN} ", 200),  # the scheme is case-insensitive (RFC 7235)
    ],
)
def test_with_a_token_only_its_bearer_reads_metrics(
    make_client: Callable[..., TestClient], authorization: str | None, status: int
) -> None:
    client = make_client(metrics_token=TOKEN)
    headers = {} if authorization is None else {"Authorization": authorization}
    response = client.get("/metrics", headers=headers)
    assert response.status_code == status
    assert ("soundpiece_alerts_total" in response.text) is (status == 200)
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer")
    assert client.get("/healthz").status_code == 200  # health checks need no token


@pytest.fixture
def guarded(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client(metrics_token=TOKEN)


HEADER_TEXT = st.text(
    st.characters(min_codepoint=1, max_codepoint=255, exclude_characters="\r\n"), max_size=120
)


@ON_SQLITE
@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    header=st.one_of(
        HEADER_TEXT,
        st.tuples(st.integers(0, len(TOKEN) - 1), st.characters(min_codepoint=0x21, max_codepoint=0xFF)).map(
            lambda change: f"Bearer {TOKEN[: change[0]]}{change[1]}{TOKEN[change[0] + 1 :]}"
        ),
    )
)
def test_garbage_or_a_near_miss_is_refused(guarded: TestClient, header: str) -> None:
    if header == f"Bearer {TOKEN}":
        return  # the mutation put back the character it replaced
    response = guarded.get("/metrics", headers={"Authorization": header.encode("latin-1")})
    assert response.status_code == 401


def test_multiprocess_metrics_need_the_variable_before_prometheus_client_is_imported(tmp_path) -> None:
    """The test process imported prometheus_client without PROMETHEUS_MULTIPROC_DIR: refusing beats
    silently serving empty scrapes."""
    with pytest.raises(RuntimeError, match="PROMETHEUS_MULTIPROC_DIR"):
        Metrics(multiprocess_dir=str(tmp_path))


# --- the server's settings ------------------------------------------------------------------------


def test_server_settings_from_environment() -> None:
    settings_ = Settings.from_env(
        {
            "SOUNDPIECE_MAX_HEAD_BYTES": "8192",
            "SOUNDPIECE_MAX_HEADERS": "50",
            "SOUNDPIECE_REQUEST_TIMEOUT": "2.5",
            "SOUNDPIECE_KEEP_ALIVE_TIMEOUT": "75",
            "SOUNDPIECE_MAX_CONNECTIONS": "64",
            "SOUNDPIECE_METRICS_PORT": "9100",
            "SOUNDPIECE_METRICS_TOKEN": TOKEN,
        }
    )
    assert (settings_.max_head_bytes, settings_.max_headers, settings_.max_connections) == (8192, 50, 64)
    assert (settings_.request_timeout, settings_.keep_alive_timeout) == (2.5, 75.0)
    assert (settings_.metrics_port, settings_.metrics_token) == (9100, TOKEN)
    assert TOKEN not in repr(settings_)
    defaults = Settings.from_env({})
    assert (defaults.max_head_bytes, defaults.max_headers, defaults.max_connections) == (16384, 100, 1000)
    assert (defaults.request_timeout, defaults.keep_alive_timeout) == (10.0, 5.0)
    assert (defaults.metrics_port, defaults.metrics_token) == (None, None)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("MAX_HEAD_BYTES", "0"),
        ("MAX_HEAD_BYTES", "-1"),
        ("MAX_HEAD_BYTES", "16k"),
        ("MAX_HEAD_BYTES", "1.5"),
        ("MAX_HEADERS", "99999999999999999999"),
        ("REQUEST_TIMEOUT", "nan"),
        ("REQUEST_TIMEOUT", "inf"),
        ("REQUEST_TIMEOUT", "86401"),
        ("KEEP_ALIVE_TIMEOUT", "0"),
        ("MAX_CONNECTIONS", "none"),
        ("METRICS_PORT", "0"),
        ("METRICS_PORT", "65536"),
        ("METRICS_PORT", "http"),
        ("METRICS_TOKEN", "short"),
        ("METRICS_TOKEN", "with a space in the middle"),
        ("METRICS_TOKEN", "non-ascii-\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9\u00e9"),
    ],
)
def test_bad_server_settings_are_refused_with_their_name(name: str, value: str) -> None:
    with pytest.raises(SettingsError, match=f"SOUNDPIECE_{name}"):
        Settings.from_env({f"SOUNDPIECE_{name}": value})


@settings(max_examples=300, deadline=None)
@given(
    name=st.sampled_from(
        [
            "MAX_HEAD_BYTES",
            "MAX_HEADERS",
            "REQUEST_TIMEOUT",
            "KEEP_ALIVE_TIMEOUT",
            "MAX_CONNECTIONS",
            "METRICS_PORT",
            "METRICS_TOKEN",
        ]
    ),
    value=st.text(max_size=40),
)
def test_any_server_setting_gives_settings_or_a_settings_error(name: str, value: str) -> None:
    try:
        Settings.from_env({f"SOUNDPIECE_{name}": value})
    except SettingsError as exc:
        assert f"SOUNDPIECE_{name}" in str(exc)


def test_every_declared_metric_is_an_attribute_and_registered() -> None:
    """METRICS is the one list: each row an annotated attribute of Metrics, each in its registry."""
    metrics = Metrics()
    assert set(METRICS) == set(Metrics.__annotations__)
    scraped = metrics.render().decode()
    for attribute, metric in METRICS.items():
        built = getattr(metrics, attribute)
        assert isinstance(built, Gauge if metric.gauge else Counter)
        assert f"# HELP {metric.name}" in scraped
