"""The database being away is a reason for the caller to retry, not a server bug.

GitHub retries a delivery that fails; an API client can too. So a lost
connection, a refused connection, an exhausted pool or a transaction PostgreSQL
rolled back (deadlock, serialization failure, admin shutdown) is answered with
503, ``Retry-After`` and a JSON body, never with a 500 or a traceback.
"""

from __future__ import annotations

import logging

from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response

from partner_endpoint.ops.logs import route_of

log = logging.getLogger(__name__)

RETRY_AFTER = {"Retry-After": "5"}
TRANSIENT_DATABASE_ERRORS: tuple[type[Exception], ...] = (OperationalError, InterfaceError, PoolTimeout)
"""psycopg and sqlite3 report connection loss, deadlocks and lock timeouts as OperationalError."""


def log_unavailable(conn: HTTPConnection, exc: Exception) -> None:
    log.error(
        "database unavailable",
        extra={"fields": {"path": route_of(conn), "error": type(exc).__name__, "detail": str(exc)[:500]}},
    )


async def database_unavailable(conn: HTTPConnection, exc: Exception) -> Response:
    """Starlette exception handler for :data:`TRANSIENT_DATABASE_ERRORS`."""
    log_unavailable(conn, exc)
    return JSONResponse(
        {"detail": "Service temporarily unavailable, retry later"}, status_code=503, headers=RETRY_AFTER
    )
