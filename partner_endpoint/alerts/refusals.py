"""What the leak report routes (every origin's, and the revocation API's) refuse with, and the first check.

A request is refused before any work once its client has failed too often: one budget per client for
all of these routes together, so failing on one route does not buy a fresh budget on the next.
"""

from __future__ import annotations

from starlette.responses import JSONResponse, Response

from partner_endpoint.ops.origin_metrics import OriginMetrics
from partner_endpoint.web.failures import FailureBudget


class Refused(Exception):
    """The answer to a request that is not a verified (or authenticated) report."""

    def __init__(self, response: Response) -> None:
        self.response = response


def error(status: int, detail: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"detail": detail}, status_code=status, headers=headers)


EVERY_METHOD = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]
"""The methods these routes are registered for: a route limited to POST would let a GET fall through
to the API's mount behind it, whose answer is a Bearer 401; the handler answers 405 instead."""


def not_allowed(allowed: str) -> JSONResponse:
    """405 with the methods the route takes."""
    return error(405, "Method not allowed", headers={"Allow": allowed})


def admit(failures: FailureBudget, client: str, metrics: OriginMetrics) -> None:
    """Refuse (429) a client that failed too often, before any work."""
    if (retry_after := failures.exhausted(client)) is not None:
        metrics.limited()
        raise Refused(error(429, "Too many failed alert requests", headers={"Retry-After": str(retry_after)}))
