"""The dashboard's routes, under ``/dashboard``, as one mountable part of the service.

Handlers return a response or raise; the exceptions they may raise are answered here, once:
a redirect to sign-in, or a page that says what went wrong and that nothing was changed.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from partner_endpoint.clock import Clock
from partner_endpoint.dashboard.activity_pages import ActivityPages
from partner_endpoint.dashboard.forms import FormError
from partner_endpoint.dashboard.headers import SecurityHeaders
from partner_endpoint.dashboard.key_pages import KeyPages
from partner_endpoint.dashboard.pages import PREFIX, STATIC, Pages
from partner_endpoint.dashboard.session_auth import Cookies, FormRefused, SessionAuth, SignInRequired
from partner_endpoint.dashboard.sign_in_pages import SignInPages
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.services.activity import ActivityService
from partner_endpoint.services.keys import KeyService
from partner_endpoint.services.sign_in import SignInService
from partner_endpoint.services.traffic import TrafficService
from partner_endpoint.settings import Settings, plain_http_loopback
from partner_endpoint.web.clients import ClientAddresses
from partner_endpoint.web.unavailable import RETRY_AFTER, TRANSIENT_DATABASE_ERRORS, log_unavailable

_BACK = (f"{PREFIX}/keys", "Go to API keys")


def _nothing() -> None:
    return None


async def home(_request: Request) -> Response:
    return RedirectResponse(f"{PREFIX}/keys", status_code=303)


class _ErrorPages:
    """The answer to each exception a handler may raise: a page that says what went wrong and that
    nothing was changed, or the way to sign in."""

    def __init__(self, pages: Pages, auth: SessionAuth) -> None:
        self._pages = pages
        self._auth = auth

    def handlers(self) -> dict[Any, Callable[[Request, Exception], Awaitable[Response]]]:
        return {
            HTTPException: self.http_error,
            FormError: self.form_error,
            FormRefused: self.form_refused,
            SignInRequired: self.sign_in_required,
            **dict.fromkeys(TRANSIENT_DATABASE_ERRORS, self.unavailable),
        }

    async def http_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        if exc.status_code == 404:
            text = "There is no such page." if exc.detail == "Not Found" else str(exc.detail)
            title = "Not found"
        else:
            title, text = "That did not work", str(exc.detail)
        return self._pages.message(
            request, exc.status_code, title, text, viewer=_viewer(request), link=_BACK, headers=exc.headers
        )

    async def form_error(self, request: Request, exc: Exception) -> Response:
        assert isinstance(exc, FormError)
        return self._pages.message(
            request, exc.status, "That did not work", exc.message, viewer=_viewer(request)
        )

    async def form_refused(self, request: Request, _exc: Exception) -> Response:
        text = "Nothing was changed. Go back, reload the page and try again."
        return self._pages.message(request, 403, "This form has expired", text, viewer=_viewer(request))

    async def sign_in_required(self, request: Request, _exc: Exception) -> Response:
        return self._auth.to_sign_in(request)

    async def unavailable(self, request: Request, exc: Exception) -> Response:
        log_unavailable(request, exc)
        text = "We cannot reach our database just now. Nothing was changed. Try again in a moment."
        return self._pages.message(request, 503, "Temporarily unavailable", text, headers=RETRY_AFTER)


def _viewer(request: Request) -> object:
    return getattr(request.state, "viewer", None)


def dashboard_routes(
    settings: Settings,
    *,
    keys: KeyService,
    traffic: TrafficService,
    activity: ActivityService,
    sign_in: SignInService,
    metrics: Metrics,
    clock: Clock,
    mail_queued: Callable[[], None] = _nothing,
) -> list[BaseRoute]:
    """``mail_queued()`` after a sign-in mail is queued (so a worker in this process sends it now)."""
    pages = Pages(clock, settings.docs_url, live_every=settings.traffic_flush_interval)
    cookies = Cookies(
        secure=not plain_http_loopback(settings.dashboard_url),
        session_lifetime=int(settings.session_lifetime),
    )
    auth = SessionAuth(sign_in, cookies, metrics)
    clients = ClientAddresses(settings)
    sign_in_pages = SignInPages(sign_in, auth, pages, metrics, clients, mail_queued)
    key_pages = KeyPages(keys, traffic, auth, pages, metrics, clients)
    activity_pages = ActivityPages(activity, auth, pages)

    key = "/keys/{key_id}"
    inner = Starlette(
        routes=[
            Route("/", home),
            Route("/sign-in", sign_in_pages.page, methods=["GET"]),
            Route("/sign-in", sign_in_pages.request_link, methods=["POST"]),
            Route("/sign-in/sent", sign_in_pages.sent, methods=["GET"]),
            Route("/sign-in/confirm", sign_in_pages.use_link, methods=["POST"]),
            Route("/sign-in/{token}", sign_in_pages.link, methods=["GET"]),
            Route("/sign-out", sign_in_pages.sign_out, methods=["POST"]),
            Route("/account", sign_in_pages.switch_account, methods=["POST"]),
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
            Route(f"{key}/traffic", key_pages.traffic, methods=["GET"]),
            Route("/activity", activity_pages.index, methods=["GET"]),
            Mount("/static", app=StaticFiles(packages=[("partner_endpoint.dashboard", "static")])),
        ],
        exception_handlers=_ErrorPages(pages, auth).handlers(),
    )
    inner.router.redirect_slashes = False  # its redirects would be built from the Host header
    headers = SecurityHeaders(inner, https=cookies.secure, static_prefix=STATIC)
    return [Route(PREFIX, home), Mount(PREFIX, app=headers)]
