"""Who may read ``/metrics``: on its own port when one is set, with the token when one is set.

With neither, nobody: ``/metrics`` is not served. Its counters are not harmless to strangers (a
sign-in request for an address that has an account moves the mail counters, one for an unknown
address does not), so the default leaks nothing, and ``serve`` says how to turn it on. The token
is compared in constant time.
"""

from __future__ import annotations

import hmac

from starlette.requests import Request
from starlette.responses import PlainTextResponse, Response

from partner_endpoint.api.bearer import Refused, bearer_token
from partner_endpoint.settings import Settings


def metrics_refusal(request: Request, settings: Settings) -> Response | None:
    """The response that refuses this scrape, or None when it may be answered."""
    unserved = settings.metrics_port is None and settings.metrics_token is None
    if unserved or (settings.metrics_port is not None and _local_port(request) != settings.metrics_port):
        return PlainTextResponse("Not Found", status_code=404)  # as if the route did not exist here
    if settings.metrics_token is not None and not _bearer_is(request, settings.metrics_token):
        return PlainTextResponse(
            "Unauthorized", status_code=401, headers={"WWW-Authenticate": 'Bearer realm="metrics"'}
        )
    return None


def _local_port(request: Request) -> int | None:
    server = request.scope.get("server")
    return server[1] if server else None


def _bearer_is(request: Request, token: str) -> bool:
    try:
        presented = bearer_token(request.headers.get("authorization"))
    except Refused:
        return False
    # Header values arrive as latin-1 text; their bytes are compared with the token's.
    return hmac.compare_digest(presented.encode("latin-1"), token.encode("ascii"))
