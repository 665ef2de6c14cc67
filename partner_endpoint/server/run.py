"""``soundpiece-partner serve``: uvicorn with the connection bounds, in one or more worker processes.

What ``uvicorn.run`` does, with two differences it cannot express: the configuration carries
:class:`ConnectionLimits` to every worker, and a second listening socket serves ``/metrics`` when
``SOUNDPIECE_METRICS_PORT`` is set. Workers share the sockets (bound here, before they start) and,
with more than one worker, a private directory for their metrics.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import tempfile
from collections.abc import Iterator

import uvicorn
from uvicorn.config import STARTUP_FAILURE
from uvicorn.supervisors import Multiprocess

from partner_endpoint.mail.transport import destination
from partner_endpoint.ops.metrics import MULTIPROCESS_DIR
from partner_endpoint.server.protocol import BoundedConfig, ConnectionLimits
from partner_endpoint.settings import Settings, SettingsError, is_loopback_host

log = logging.getLogger(__name__)
APP = "partner_endpoint.app:app_from_env"


def serve(settings: Settings, host: str, port: int, workers: int) -> int:
    """Run until SIGINT/SIGTERM; the exit status."""
    if settings.metrics_port == port:
        raise SettingsError(f"SOUNDPIECE_METRICS_PORT must differ from the service port {port}")
    if settings.test_signer and not is_loopback_host(host):
        raise SettingsError(
            f"SOUNDPIECE_TEST_SIGNER is on: refusing to listen on {host}, beyond loopback (whoever reads "
            "the test signer's key could revoke keys); turn it off, or serve on 127.0.0.1"
        )
    _announce(settings, host, port)
    if settings.dashboard_url.startswith("https://") and not settings.trusted_proxy_header:
        log.warning(  # the likely set-up: a TLS proxy in front, and every request from its address
            "SOUNDPIECE_DASHBOARD_URL is https:// but SOUNDPIECE_TRUSTED_PROXY_HEADER is not set: behind a "
            "TLS proxy every user is one client, sharing one sign-in budget and one failure limit"
        )
    config = BoundedConfig(
        APP,
        limits=ConnectionLimits.from_settings(settings),
        factory=True,
        workers=workers,
        log_config=None,
        access_log=False,
        proxy_headers=False,  # client addresses come from SOUNDPIECE_TRUSTED_PROXY_HEADER only
        server_header=False,
    )
    sockets = [_listen(host, port)]
    if settings.metrics_port is not None:
        sockets.append(_listen(host, settings.metrics_port))
    try:
        if workers > 1:
            with _shared_metrics_directory():
                Multiprocess(config, sockets=sockets).run()
            return 0
        server = uvicorn.Server(config)
        with contextlib.suppress(KeyboardInterrupt):
            server.run(sockets=sockets)
        return 0 if server.started else STARTUP_FAILURE
    finally:
        for sock in sockets:
            sock.close()


def _announce(settings: Settings, host: str, port: int) -> None:
    """The first lines an operator reads: where the service listens, its dashboard, data and mail."""
    address = f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
    dashboard = settings.dashboard_url if settings.dashboard else "off"
    log.info(
        f"serving {address}; dashboard {dashboard}; database {settings.shown_database}; "
        f"mail to {destination(settings)}",
        extra={
            "fields": {
                "address": address,
                "dashboard": dashboard,
                "database": settings.shown_database,
                "mail": destination(settings),
            }
        },
    )
    if settings.metrics_port is None and settings.metrics_token is None:
        log.info("/metrics is off: set SOUNDPIECE_METRICS_TOKEN or SOUNDPIECE_METRICS_PORT to scrape it")


def _listen(host: str, port: int) -> socket.socket:
    """A bound socket the workers inherit (uvicorn's ``Config.bind_socket``, for any port)."""
    sock = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise SettingsError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def _shared_metrics_directory() -> Iterator[None]:
    """A fresh directory for the workers' metrics (empty at each start, removed at exit).

    prometheus_client reads the variable when a worker first imports it; the workers are new
    interpreters (spawned), so they all see it.
    """
    previous = os.environ.get(MULTIPROCESS_DIR)
    with tempfile.TemporaryDirectory(prefix="soundpiece-metrics-") as directory:
        os.environ[MULTIPROCESS_DIR] = directory
        try:
            yield
        finally:
            if previous is None:
                del os.environ[MULTIPROCESS_DIR]
            else:
                os.environ[MULTIPROCESS_DIR] = previous
