"""JSON log lines. Structured fields go in ``extra={"fields": {...}}``; never a full credential."""

from __future__ import annotations

import json
import logging
import sys
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from starlette.requests import HTTPConnection


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, object] = {
            "ts": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
            + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            entry.update(fields)
        if record.exc_info:
            entry["exc"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def route_of(conn: HTTPConnection) -> str:
    """The route a request matched, as written (``/dashboard/sign-in/{token}``): what a log line names
    instead of the path, which may hold a one-time secret (a sign-in link) that the log would outlive.

    ``/v1/*`` if a mounted part failed before choosing its route; ``*`` if no route matched.
    """
    from starlette.routing import Mount, Route  # not at the top: the CLI logs too, without Starlette

    route = conn.scope.get("route")
    prefix = conn.scope.get("root_path", "")
    if isinstance(route, Route):
        return str(prefix) + route.path
    return str(prefix) + "/*" if isinstance(route, Mount) else "*"


def configure_logging(level: str = "INFO") -> None:
    """Send every log record, uvicorn's included, to stderr as one JSON object per line."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for name in ("uvicorn", "uvicorn.error"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
    # No access log, whatever uvicorn was told: request paths may carry one-time secrets (a dashboard
    # sign-in link), and uvicorn logs requests whenever this logger has handlers, its parents' included.
    access = logging.getLogger("uvicorn.access")
    access.handlers[:] = []
    access.propagate = False
    logging.getLogger("alembic").setLevel(logging.WARNING)
    logging.getLogger("httpx").setLevel(logging.WARNING)  # a line per request: test-alert's, key fetches
