"""The Soundpiece API's routes, every one behind Bearer authentication (``/v1/...``)."""

from __future__ import annotations

from starlette.middleware import Middleware
from starlette.middleware.authentication import AuthenticationMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Mount, Route, Router

from partner_endpoint.api.bearer import ApiKeyBackend, unauthorized


async def whoami(request: Request) -> Response:
    user = request.user
    return JSONResponse({"account_id": user.account_id, "key_id": user.key_id, "label": user.label})


def api_mount(backend: ApiKeyBackend) -> Mount:
    return Mount(
        "/v1",
        # No redirect_slashes: its redirects would take their host from the Host header.
        app=Router([Route("/whoami", whoami)], redirect_slashes=False),
        middleware=[Middleware(AuthenticationMiddleware, backend=backend, on_error=unauthorized)],
    )
