"""The Starlette application: routes, authentication, lifespan. Built only by :func:`create_app`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime

import httpx
from sqlalchemy import Engine, text
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route

from partner_endpoint.auth import ApiKeyBackend, unauthorized
from partner_endpoint.clock import utc_now
from partner_endpoint.github.endpoint import AlertEndpoint
from partner_endpoint.github.keys import PublicKeyCache
from partner_endpoint.mail import outbox
from partner_endpoint.mail.transport import transport_for
from partner_endpoint.mail.worker import MailWorker
from partner_endpoint.metrics import CONTENT_TYPE, Metrics
from partner_endpoint.settings import Settings
from partner_endpoint.store.db import make_engine, read_transaction
from partner_endpoint.unavailable import RETRY_AFTER, TRANSIENT_DATABASE_ERRORS, database_unavailable

log = logging.getLogger(__name__)


async def whoami(request: Request) -> Response:
    user = request.user
    return JSONResponse({"account_id": user.account_id, "key_id": user.key_id, "label": user.label})


def create_app(
    settings: Settings,
    *,
    engine: Engine | None = None,
    clock: Callable[[], datetime] = utc_now,
    monotonic: Callable[[], float] = time.monotonic,
) -> Starlette:
    """The service. Schema migrations are run by the CLI before workers start, not here."""
    engine = engine or make_engine(settings.database_url)
    metrics = Metrics()
    http = httpx.AsyncClient(timeout=settings.key_fetch_timeout, follow_redirects=True)
    keys = PublicKeyCache(
        http,
        settings.github_keys_url,
        metrics,
        token=settings.github_token,
        refetch_interval=settings.key_refetch_interval,
        fetch_timeout=settings.key_fetch_timeout,
        clock=monotonic,
    )
    alerts = AlertEndpoint(engine, keys, metrics, settings, clock)
    worker = MailWorker(
        engine,
        transport_for(settings),
        metrics,
        max_attempts=settings.mail_max_attempts,
        poll_interval=settings.mail_poll_interval,
        clock=clock,
    )

    def database_ok() -> None:
        with read_transaction(engine) as conn:
            conn.execute(text("SELECT 1"))

    async def healthz(_request: Request) -> Response:
        try:
            await run_in_threadpool(database_ok)
        except Exception as exc:
            log.error("health check failed", extra={"fields": {"error": repr(exc)}})
            return JSONResponse({"status": "unavailable"}, status_code=503, headers=RETRY_AFTER)
        return JSONResponse({"status": "ok"})

    def outbox_depth() -> int:
        with read_transaction(engine) as conn:
            return outbox.depth(conn)

    async def metrics_endpoint(_request: Request) -> Response:
        metrics.outbox_depth.set(await run_in_threadpool(outbox_depth))
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    @contextlib.asynccontextmanager
    async def lifespan(_app: Starlette) -> AsyncIterator[None]:
        stop = asyncio.Event()
        task = asyncio.create_task(worker.run_forever(stop)) if settings.run_mail_worker else None
        try:
            yield
        finally:
            stop.set()
            if task is not None:
                await task
            await http.aclose()
            engine.dispose()

    api = Mount(
        "/v1",
        routes=[Route("/whoami", whoami)],
        middleware=[
            Middleware(
                AuthenticationMiddleware,
                backend=ApiKeyBackend(engine, settings, clock),
                on_error=unauthorized,
            )
        ],
    )
    return Starlette(
        routes=[
            Route("/v1/secret-scanning/github", alerts.handle, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/metrics", metrics_endpoint),
            api,
        ],
        lifespan=lifespan,
        exception_handlers=dict.fromkeys(TRANSIENT_DATABASE_ERRORS, database_unavailable),
    )


def app_from_env() -> Starlette:
    """Factory for ``uvicorn --factory`` (used by ``soundpiece-partner serve``)."""
    from partner_endpoint.logs import configure_logging

    settings = Settings.from_env()
    configure_logging(settings.log_level)
    return create_app(settings)
