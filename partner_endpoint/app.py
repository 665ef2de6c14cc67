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
from dataclasses import dataclass

import httpx
from cryptography.hazmat.primitives.asymmetric import ec
from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.routing import BaseRoute, Route

from partner_endpoint.alerts.receiver import AlertReceiver
from partner_endpoint.alerts.refusals import EVERY_METHOD
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
from partner_endpoint.domain.origins import ORIGINS, SELF_MANAGED_GITLAB, Origin
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
    log within ``settings.key_change_delay``. ``app.state.flush_traffic`` writes the traffic this
    process counted now, as the background loop does every flush interval.
    """
    parts = _Parts.build(settings, engine or make_engine(settings.database_url), clock, metrics or Metrics())
    leaks = LeakService.from_settings(
        parts.engine, settings, clock, key_changed=parts.directory.key_changed, mail_queued=parts.mail_queued
    )
    recorder = TrafficRecorder(clock, parts.metrics, max_pairs=settings.traffic_max_pairs)
    traffic = TrafficService.from_settings(parts.engine, settings, clock, mail_queued=parts.mail_queued)
    routes: list[BaseRoute] = [
        *_leak_report_routes(parts, leaks),
        *ops_routes(parts.engine, parts.metrics, settings),
        _api(parts, recorder),  # last: it takes every other /v1/ path, behind the API's Bearer keys
    ]
    if settings.dashboard:
        routes += _dashboard(parts, traffic)
    background = _Background(parts, recorder, traffic)
    app = Starlette(
        routes=routes,
        lifespan=background.lifespan,
        exception_handlers=dict.fromkeys(TRANSIENT_DATABASE_ERRORS, database_unavailable),
    )
    app.router.redirect_slashes = False  # its redirects would take their host from the request
    app.state.key_directory = parts.directory
    app.state.flush_traffic = background.flush_traffic
    return app


@dataclass(frozen=True, slots=True)
class _Parts:
    """What the app's parts share: made once per app, closed by :class:`_Background` at shutdown."""

    settings: Settings
    engine: Engine
    clock: Clock
    metrics: Metrics
    box: SecretBox
    clients: ClientAddresses
    directory: KeyDirectory
    mail: MailWorker
    mail_queued: Callable[[], None]
    """Wakes this process's mail worker after a commit that queued mail (if it runs here)."""
    http: httpx.AsyncClient

    @classmethod
    def build(cls, settings: Settings, engine: Engine, clock: Clock, metrics: Metrics) -> _Parts:
        box = load_secret_box(settings)
        mail = MailWorker.from_settings(engine, settings, metrics, box=box, clock=clock)
        return cls(
            settings=settings,
            engine=engine,
            clock=clock,
            metrics=metrics,
            box=box,
            clients=ClientAddresses(settings),
            directory=KeyDirectory.from_settings(engine, metrics, settings, clock),
            mail=mail,
            mail_queued=mail.nudge if settings.mail_worker else _nothing,
            http=httpx.AsyncClient(timeout=settings.key_fetch_timeout, follow_redirects=True),
        )


class _Background:
    """The app's background work and its shutdown: the key change log, the traffic flush, mail."""

    def __init__(self, parts: _Parts, recorder: TrafficRecorder, traffic: TrafficService) -> None:
        self._parts = parts
        self._recorder = recorder
        self._traffic = traffic

    @contextlib.asynccontextmanager
    async def lifespan(self, _app: Starlette) -> AsyncIterator[None]:
        parts, stop = self._parts, asyncio.Event()
        await parts.directory.sync()  # the cache is believed from the first request on
        traffic, interval = self._traffic, parts.settings.traffic_flush_interval
        flushes = record_traffic(self._recorder, traffic.write, traffic.prune, stop, interval=interval)
        tasks = [asyncio.create_task(parts.directory.run_forever(stop)), asyncio.create_task(flushes)]
        if parts.settings.mail_worker:
            tasks.append(asyncio.create_task(parts.mail.run_forever(stop)))
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(*tasks)
            await parts.http.aclose()
            parts.engine.dispose()
            parts.metrics.close()

    async def flush_traffic(self) -> None:
        await run_in_threadpool(self._traffic.write, self._recorder.take())


def _leak_report_routes(parts: _Parts, leaks: LeakService) -> list[BaseRoute]:
    """One receiver per leak reporting platform that is on, and the Token Revocation API if it is."""
    settings = parts.settings
    # One budget of failed requests per client for every leak report route together.
    failures = FailureBudget(settings.alert_failure_limit, settings.alert_failure_window, parts.clock)
    trusted = _trial_keys(settings)
    routes: list[BaseRoute] = [
        Route(
            origin.route,
            AlertReceiver(
                origin=origin,
                keys=_origin_keys(origin, parts, trusted),
                leaks=leaks,
                metrics=OriginMetrics(parts.metrics, origin.name),
                clients=parts.clients,
                failures=failures,
                max_body_bytes=settings.max_body_bytes,
            ).handle,
            methods=EVERY_METHOD,  # a wrong method is the handler's 405, not the API's 401
        )
        for origin in ORIGINS
        if getattr(settings, origin.switch)
    ]
    if settings.revocation_api:  # self-managed GitLab's; before the API's mount (its token is no API key)
        routes += RevocationApi(
            tokens=RevocationTokenService.from_settings(parts.engine, settings, parts.clock),
            leaks=leaks,
            metrics=OriginMetrics(parts.metrics, SELF_MANAGED_GITLAB),
            clients=parts.clients,
            failures=failures,
            max_body_bytes=settings.max_body_bytes,
        ).routes()
    return routes


def _origin_keys(origin: Origin, parts: _Parts, trusted: dict[str, ec.EllipticCurvePublicKey]) -> SigningKeys:
    settings = parts.settings
    return SigningKeys(
        parts.http,
        getattr(settings, origin.keys_url),
        parts.metrics,
        origin=origin,
        token=getattr(settings, origin.keys_token) if origin.keys_token else None,
        refetch_interval=settings.key_refetch_interval,
        fetch_timeout=settings.key_fetch_timeout,
        clock=parts.clock,
        # one document and one refetch limit per origin for every process
        shared=SharedKeyDocument(parts.engine, origin.name),
        pinned=trusted,
    )


def _api(parts: _Parts, recorder: TrafficRecorder) -> BaseRoute:
    settings = parts.settings
    failures = FailureBudget(settings.auth_failure_limit, settings.auth_failure_window, parts.clock)
    return api_mount(ApiKeyBackend(parts.directory, failures, parts.clients, parts.metrics, recorder))


def _dashboard(parts: _Parts, traffic: TrafficService) -> list[BaseRoute]:
    engine, box, clock, settings = parts.engine, parts.box, parts.clock, parts.settings
    limits = Limits.from_settings(settings)
    return dashboard_routes(
        settings,
        keys=KeyService(engine, box, clock, key_changed=parts.directory.key_changed),
        traffic=traffic,
        activity=ActivityService(engine),
        sign_in=SignInService(engine, box, clock, limits=limits, sender=settings.mail_from),
        metrics=parts.metrics,
        clock=clock,
        mail_queued=parts.mail_queued,
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
