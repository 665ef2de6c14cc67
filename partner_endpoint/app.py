"""The Starlette application: composes the parts (API, GitHub origin, operations, dashboard, mail worker).

Built only by :func:`create_app`; each part owns its routes in its own package.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.routing import Route

from partner_endpoint.alerts.receiver import AlertEndpoint
from partner_endpoint.alerts.signing_keys import PublicKeyCache
from partner_endpoint.alerts.trial_signer import TrialSigner
from partner_endpoint.api.bearer import ApiKeyBackend
from partner_endpoint.api.key_directory import KeyDirectory
from partner_endpoint.api.routes import api_mount
from partner_endpoint.clock import utc_now
from partner_endpoint.dashboard.routes import dashboard_routes
from partner_endpoint.mail.worker import MailWorker
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.ops.routes import ops_routes
from partner_endpoint.settings import Settings
from partner_endpoint.store.db import make_engine
from partner_endpoint.store.key_documents import SharedKeyDocument
from partner_endpoint.store.secretbox import load_secret_box
from partner_endpoint.web.failures import FailureBudget
from partner_endpoint.web.unavailable import TRANSIENT_DATABASE_ERRORS, database_unavailable

log = logging.getLogger(__name__)


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
    metrics: Metrics | None = None,
) -> Starlette:
    """The service. Schema migrations are run by the CLI before workers start, not here.

    ``app.state.key_directory`` is the API's key cache. Whatever changes a key or an account's
    allowlist in this process calls its ``key_changed(key_id)`` / ``account_changed(account_id)``
    after the commit, so the change applies here at once (other processes follow the key change log
    within ``settings.key_change_delay``); the alert endpoint does.
    """
    engine = engine or make_engine(settings.database_url)
    metrics = metrics or Metrics()
    directory = KeyDirectory(
        engine,
        metrics,
        last_used_interval=settings.last_used_interval,
        change_delay=settings.key_change_delay,
        max_keys=settings.auth_cache_size,
        clock=clock,
        monotonic=monotonic,
    )
    budget = FailureBudget(settings.auth_failure_limit, settings.auth_failure_window, monotonic)
    http = httpx.AsyncClient(timeout=settings.key_fetch_timeout, follow_redirects=True)
    keys = PublicKeyCache(
        http,
        settings.github_keys_url,
        metrics,
        token=settings.github_token,
        refetch_interval=settings.key_refetch_interval,
        fetch_timeout=settings.key_fetch_timeout,
        clock=monotonic,
        shared=SharedKeyDocument(engine),  # one document and one refetch limit for every process
        wall_clock=clock,
        pinned=_trial_keys(settings),
    )
    box = load_secret_box(settings)
    worker = MailWorker.from_settings(engine, settings, metrics, box=box, clock=clock)
    mail_queued = worker.nudge if settings.mail_worker else lambda: None
    alerts = AlertEndpoint(
        engine,
        keys,
        metrics,
        settings,
        clock,
        monotonic,
        key_changed=directory.key_changed,
        mail_queued=mail_queued,
    )
    dashboard = (
        dashboard_routes(
            engine,
            settings,
            box=box,
            metrics=metrics,
            clock=clock,
            key_changed=directory.key_changed,
            mail_queued=mail_queued,
        )
        if settings.dashboard
        else []
    )

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        await directory.sync()
        tasks = [asyncio.create_task(directory.run_forever(stop))]
        if settings.mail_worker:
            tasks.append(asyncio.create_task(worker.run_forever(stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await http.aclose()
            engine.dispose()
            metrics.close()

    app = Starlette(
        routes=[
            Route("/v1/secret-scanning/github", alerts.handle, methods=["POST"]),
            *ops_routes(engine, metrics, settings),
            api_mount(ApiKeyBackend(directory, budget, settings, metrics)),
            *dashboard,
        ],
        lifespan=lifespan,
        exception_handlers=dict.fromkeys(TRANSIENT_DATABASE_ERRORS, database_unavailable),
    )
    app.router.redirect_slashes = False  # its redirects would take their host from the Host header
    app.state.key_directory = directory
    return app


def _trial_keys(settings: Settings) -> dict[str, ec.EllipticCurvePublicKey]:
    """The local test signer's key when ``SOUNDPIECE_TEST_SIGNER`` is on (``serve`` made it), else none."""
    if not settings.test_signer:
        return {}
    signer = TrialSigner.load_or_create(settings.test_signer_file)
    log.warning(
        "SOUNDPIECE_TEST_SIGNER is on: alerts signed by the local test signer are trusted; "
        "never in production",
        extra={"fields": {"key_id": signer.key_id, "key_file": str(settings.test_signer_file)}},
    )
    return {signer.key_id: signer.public_key}


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (used by ``soundpiece-partner serve``)."""
    from partner_endpoint.ops.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings, metrics=Metrics.from_env())
