"""The Starlette application: the parts (API, alert receiver, operations, dashboard, mail worker),
each built from the settings it needs, and the services they share.

Built only by :func:`create_app`; each part owns its routes in its own package, and every change
of state goes through one service per capability (:mod:`partner_endpoint.services`).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Callable

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Route

from partner_endpoint.alerts.receiver import AlertReceiver
from partner_endpoint.alerts.revocation_api import RevocationApi
from partner_endpoint.alerts.signing_keys import SigningKeys
from partner_endpoint.alerts.trial_signer import TrialSigner
from partner_endpoint.api.bearer import ApiKeyBackend
from partner_endpoint.api.key_directory import KeyDirectory
from partner_endpoint.api.routes import api_mount
from partner_endpoint.api.traffic import TrafficRecorder
from partner_endpoint.api.traffic import run_forever as record_traffic
from partner_endpoint.clock import SYSTEM_CLOCK, Clock
from partner_endpoint.dashboard.routes import dashboard_routes
from partner_endpoint.domain.origins import GITHUB, ORIGINS, SELF_MANAGED_GITLAB, Origin
from partner_endpoint.mail.worker import MailWorker
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.ops.origin_metrics import OriginMetrics
from partner_endpoint.ops.routes import ops_routes
from partner_endpoint.services.activity import ActivityService
from partner_endpoint.services.keys import KeyService
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.services.revocation_tokens import RevocationTokenService
from partner_endpoint.services.sign_in import Limits, SignInService
from partner_endpoint.services.traffic import TrafficService
from partner_endpoint.settings import Settings
from partner_endpoint.store.db import make_engine
from partner_endpoint.store.key_documents import SharedKeyDocument
from partner_endpoint.store.secretbox import SecretBox, load_secret_box
from partner_endpoint.web.clients import ClientAddresses
from partner_endpoint.web.failures import FailureBudget
from partner_endpoint.web.unavailable import TRANSIENT_DATABASE_ERRORS, database_unavailable

log = logging.getLogger(__name__)

GITHUB_ALERTS = GITHUB.route


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Clock = SYSTEM_CLOCK,
    metrics: Metrics | None = None,
) -> Starlette:
    """The service. Schema migrations are run by the CLI before workers start, not here.

    ``app.state.key_directory`` is the API's key cache: whatever changes a key or an allowlist in
    this process tells it after the commit (the services do), other processes follow the key change
    log within ``settings.key_change_delay``.
    """
    engine = engine or make_engine(settings.database_url)
    metrics = metrics or Metrics()
    box = load_secret_box(settings)
    clients = ClientAddresses(settings)
    directory = KeyDirectory.from_settings(engine, metrics, settings, clock)
    worker = MailWorker.from_settings(engine, settings, metrics, box=box, clock=clock)
    mail_queued = worker.nudge if settings.mail_worker else _nothing
    http = httpx.AsyncClient(timeout=settings.key_fetch_timeout, follow_redirects=True)
    leaks = LeakService.from_settings(
        engine, settings, clock, key_changed=directory.key_changed, mail_queued=mail_queued
    )
    # One budget of failed requests per client for every leak report route together.
    failures = FailureBudget(settings.alert_failure_limit, settings.alert_failure_window, clock)
    trusted = _trial_keys(settings)
    receivers = [
        AlertReceiver(
            origin=origin,
            keys=_origin_keys(origin, settings, http, engine, metrics, clock, trusted),
            leaks=leaks,
            metrics=OriginMetrics(metrics, origin.name),
            clients=clients,
            failures=failures,
            max_body_bytes=settings.max_body_bytes,
        )
        for origin in ORIGINS
        if getattr(settings, origin.switch)
    ]
    recorder = TrafficRecorder(clock, metrics, max_pairs=settings.traffic_max_pairs)
    traffic = TrafficService.from_settings(engine, settings, clock, mail_queued=mail_queued)
    bearer = ApiKeyBackend(
        directory,
        FailureBudget(settings.auth_failure_limit, settings.auth_failure_window, clock),
        clients,
        metrics,
        recorder,
    )
    routes: list[BaseRoute] = [
        *(Route(receiver.origin.route, receiver.handle, methods=["POST"]) for receiver in receivers),
        *(
            _revocation_api(settings, engine, clock, leaks, metrics, clients, failures)
            if settings.revocation_api
            else []
        ),
        *ops_routes(engine, metrics, settings),
        api_mount(bearer),  # last: it takes every other /v1/ path, behind the API's Bearer keys
    ]
    if settings.dashboard:
        routes += _dashboard(settings, engine, box, clock, metrics, directory, traffic, mail_queued)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        await directory.sync()  # the cache is believed from the first request on
        tasks = [
            asyncio.create_task(directory.run_forever(stop)),
            asyncio.create_task(
                record_traffic(
                    recorder, traffic.write, traffic.prune, stop, interval=settings.traffic_flush_interval
                )
            ),
        ]
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
        routes=routes,
        lifespan=lifespan,
        exception_handlers=dict.fromkeys(TRANSIENT_DATABASE_ERRORS, database_unavailable),
    )
    app.router.redirect_slashes = False  # its redirects would take their host from the request
    app.state.key_directory = directory

    async def flush_traffic() -> None:
        """Write what this process counted now (the background loop does it every flush interval)."""
        await run_in_threadpool(traffic.write, recorder.take())

    app.state.flush_traffic = flush_traffic
    return app


def _origin_keys(
    origin: Origin,
    settings: Settings,
    http: httpx.AsyncClient,
    engine: Engine,
    metrics: Metrics,
    clock: Clock,
    trusted: dict[str, ec.EllipticCurvePublicKey],
) -> SigningKeys:
    return SigningKeys(
        http,
        getattr(settings, origin.keys_url),
        metrics,
        origin=origin,
        token=getattr(settings, origin.keys_token) if origin.keys_token else None,
        refetch_interval=settings.key_refetch_interval,
        fetch_timeout=settings.key_fetch_timeout,
        clock=clock,
        # one document and one refetch limit per origin for every process
        shared=SharedKeyDocument(engine, origin.name),
        pinned=trusted,
    )


def _revocation_api(
    settings: Settings,
    engine: Engine,
    clock: Clock,
    leaks: LeakService,
    metrics: Metrics,
    clients: ClientAddresses,
    failures: FailureBudget,
) -> list[Route]:
    """Self-managed GitLab's Token Revocation API, before the API's mount (its token is not an API key)."""
    return RevocationApi(
        tokens=RevocationTokenService.from_settings(engine, settings, clock),
        leaks=leaks,
        metrics=OriginMetrics(metrics, SELF_MANAGED_GITLAB),
        clients=clients,
        failures=failures,
        max_body_bytes=settings.max_body_bytes,
    ).routes()


def _dashboard(
    settings: Settings,
    engine: Engine,
    box: SecretBox,
    clock: Clock,
    metrics: Metrics,
    directory: KeyDirectory,
    traffic: TrafficService,
    mail_queued: Callable[[], None],
) -> list[BaseRoute]:
    limits = Limits.from_settings(settings)
    return dashboard_routes(
        settings,
        keys=KeyService(engine, box, clock, key_changed=directory.key_changed),
        traffic=traffic,
        activity=ActivityService(engine),
        sign_in=SignInService(engine, box, clock, limits=limits, sender=settings.mail_from),
        metrics=metrics,
        clock=clock,
        mail_queued=mail_queued,
    )


def _trial_keys(settings: Settings) -> dict[str, ec.EllipticCurvePublicKey]:
    """The local test signer's key when ``SOUNDPIECE_TEST_SIGNER`` is on (``serve`` made it), else none.
    Every origin that is on trusts it then."""
    if not settings.test_signer:
        return {}
    signer = TrialSigner.load_or_create(settings.test_signer_file)
    log.warning(
        "SOUNDPIECE_TEST_SIGNER is on: alerts signed by the local test signer are trusted; "
        "never in production",
        extra={"fields": {"key_id": signer.key_id, "key_file": str(settings.test_signer_file)}},
    )
    return {signer.key_id: signer.public_key}


def _nothing() -> None:
    return None


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (used by ``soundpiece-partner serve``)."""
    from partner_endpoint.ops.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings, metrics=Metrics.from_env())
