"""Operations: ``/healthz`` for load balancers and orchestrators, ``/metrics`` for Prometheus."""

from __future__ import annotations

import logging

from sqlalchemy import Engine, text
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from partner_endpoint.ops.metrics import CONTENT_TYPE, Metrics
from partner_endpoint.ops.metrics_access import metrics_refusal
from partner_endpoint.settings import Settings
from partner_endpoint.store import outbox
from partner_endpoint.store.db import read_transaction
from partner_endpoint.web.unavailable import RETRY_AFTER

log = logging.getLogger(__name__)


def ops_routes(engine: Engine, metrics: Metrics, settings: Settings) -> list[Route]:
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

    async def metrics_endpoint(request: Request) -> Response:
        if (refusal := metrics_refusal(request, settings)) is not None:
            return refusal
        metrics.outbox_depth.set(await run_in_threadpool(outbox_depth))
        return Response(metrics.render(), media_type=CONTENT_TYPE)

    return [Route("/healthz", healthz), Route("/metrics", metrics_endpoint)]
