"""The dashboard's routes, under ``/dashboard``, as one mountable part of the service."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from partner_endpoint.dashboard.headers import SecurityHeaders
from partner_endpoint.dashboard.key_pages import KeyPages
from partner_endpoint.dashboard.pages import PREFIX, STATIC, Pages
from partner_endpoint.dashboard.session_auth import SessionAuth
from partner_endpoint.dashboard.sign_in_pages import SignIn
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.settings import Settings
from partner_endpoint.store.secretbox import SecretBox
from partner_endpoint.web.unavailable import RETRY_AFTER, TRANSIENT_DATABASE_ERRORS, log_unavailable


def _nothing(*_args: object) -> None:
    return None


def dashboard_routes(
    engine: Engine,
    settings: Settings,
    *,
    box: SecretBox,
    metrics: Metrics,
    clock: Callable[[], datetime],
    key_changed: Callable[[int], None] = _nothing,
    mail_queued: Callable[[], None] = _nothing,
) -> list[BaseRoute]:
    """``key_changed(key_id)`` runs after every commit that revokes or deletes a key;
    ``mail_queued()`` after a sign-in mail is queued (so a worker in this process sends it now)."""
    pages = Pages(clock, settings.docs_url)
    auth = SessionAuth(engine, settings, clock, metrics, pages)
    sign_in = SignIn(engine, settings, box, clock, metrics, auth, pages, mail_queued)
    key_pages = KeyPages(engine, box, clock, metrics, auth, pages, key_changed)

    async def home(_request: Request) -> Response:
        return RedirectResponse(f"{PREFIX}/keys", status_code=303)

    async def http_error(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        title = "Page not found" if exc.status_code == 404 else "That did not work"
        text = "There is no such page." if exc.status_code == 404 else str(exc.detail)
        link = (f"{PREFIX}/keys", "Go to API keys")
        return pages.message(request, exc.status_code, title, text, link=link, headers=exc.headers)

    async def unavailable(request: Request, exc: Exception) -> Response:
        log_unavailable(request, exc)
        text = "We cannot reach our database just now. Nothing was changed. Try again in a moment."
        return pages.message(request, 503, "Temporarily unavailable", text, headers=RETRY_AFTER)

    key = "/keys/{key_id}"
    inner = Starlette(
        routes=[
            Route("/", home),
            Route("/sign-in", sign_in.page, methods=["GET"]),
            Route("/sign-in", sign_in.request_link, methods=["POST"]),
            Route("/sign-in/sent", sign_in.sent, methods=["GET"]),
            Route("/sign-in/confirm", sign_in.use_link, methods=["POST"]),
            Route("/sign-in/{token}", sign_in.link, methods=["GET"]),
            Route("/sign-out", sign_in.sign_out, methods=["POST"]),
            Route("/account", sign_in.switch_account, methods=["POST"]),
            Route("/keys", key_pages.index, methods=["GET"]),
            Route("/keys", key_pages.create, methods=["POST"]),
            Route("/keys/new", key_pages.new, methods=["GET"]),
            Route(key, key_pages.show, methods=["GET"]),
            Route(f"{key}/rotate", key_pages.rotate_page, methods=["GET"]),
            Route(f"{key}/rotate", key_pages.rotate, methods=["POST"]),
            Route(f"{key}/revoke", key_pages.confirm_revoke, methods=["GET"]),
            Route(f"{key}/revoke", key_pages.revoke, methods=["POST"]),
            Route(f"{key}/delete", key_pages.confirm_delete, methods=["GET"]),
            Route(f"{key}/delete", key_pages.delete, methods=["POST"]),
            Mount("/static", app=StaticFiles(packages=[("partner_endpoint.dashboard", "static")])),
        ],
        exception_handlers={
            HTTPException: http_error,
            **dict.fromkeys(TRANSIENT_DATABASE_ERRORS, unavailable),
        },
    )
    inner.router.redirect_slashes = False  # its redirects would be built from the Host header
    headers = SecurityHeaders(inner, https=auth.cookies.secure, static_prefix=STATIC)
    return [Route(PREFIX, home), Mount(PREFIX, app=headers)]
