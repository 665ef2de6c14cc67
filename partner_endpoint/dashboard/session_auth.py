"""Session authentication for the dashboard: cookies, server-side sessions, CSRF tokens.

* The session cookie holds a random token; the database holds its SHA-256 only, so a copy of
  the database signs nobody in. ``HttpOnly``, ``SameSite=Lax``, ``Secure`` (with the
  ``__Host-`` prefix, which pins it to this host) unless the dashboard is plain http on loopback.
* The CSRF token of a form is an HMAC of the session's token: tied to the server-side session,
  unknown to anyone who cannot read the cookie, compared in constant time. Forms shown before
  sign-in (request a link, use a link) are tied the same way to a random "form" cookie.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlencode

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import rules
from partner_endpoint.dashboard.forms import FormError, read_form, safe_next
from partner_endpoint.dashboard.pages import PREFIX, Pages
from partner_endpoint.ops.logs import route_of
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.settings import Settings, plain_http_loopback
from partner_endpoint.store import keys, sessions
from partner_endpoint.store.db import read_transaction, write_transaction

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_CSRF_CONTEXT = b"soundpiece dashboard csrf v1"


def new_token() -> str:
    """256 random bits, URL-safe (43 characters)."""
    return secrets.token_urlsafe(32)


def well_formed(token: str | None) -> str | None:
    """``token`` if it could be one of ours (anything else is not looked up at all)."""
    return token if token is not None and _TOKEN.fullmatch(token) else None


def csrf_token(secret: str) -> str:
    return hmac.new(secret.encode("ascii"), _CSRF_CONTEXT, hashlib.sha256).hexdigest()


def csrf_ok(secret: str | None, presented: str | None) -> bool:
    """Whether a form's token belongs to this session (or form cookie); constant time."""
    if secret is None or presented is None:
        return False
    return hmac.compare_digest(csrf_token(secret).encode("ascii"), presented.encode("utf-8", "replace"))


@dataclass(frozen=True, slots=True)
class Cookies:
    """Names and attributes of the dashboard's two cookies."""

    secure: bool
    session_lifetime: int

    @property
    def session(self) -> str:
        return "__Host-sp_session" if self.secure else "sp_session"

    @property
    def form(self) -> str:
        return "__Host-sp_form" if self.secure else "sp_form"

    def session_token(self, cookies: Mapping[str, str]) -> str | None:
        return well_formed(cookies.get(self.session))

    def form_token(self, cookies: Mapping[str, str]) -> str | None:
        return well_formed(cookies.get(self.form))

    def _set(self, response: Response, name: str, value: str, max_age: int | None) -> None:
        response.set_cookie(
            name, value, max_age=max_age, path="/", secure=self.secure, httponly=True, samesite="lax"
        )

    def start_session(self, response: Response, token: str) -> None:
        self._set(response, self.session, token, self.session_lifetime)
        self.forget_form(response)

    def end_session(self, response: Response) -> None:
        self._set(response, self.session, "", 0)

    def start_form(self, response: Response, token: str) -> None:
        """Until the browser closes; the form's token is only as old as the page that holds it."""
        self._set(response, self.form, token, None)

    def forget_form(self, response: Response) -> None:
        self._set(response, self.form, "", 0)


# --- the signed-in viewer ----------------------------------------------------------------------

TOUCH_INTERVAL = timedelta(seconds=60)
"""A session's last activity is written at most once a minute, and at least four times per idle
timeout (a shorter one would end sessions in use): the idle timeout is that precise."""


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in (an owner address), the account shown, and every account of that address."""

    session: sessions.Session
    token: str
    account: keys.Account
    accounts: tuple[keys.Account, ...]

    def __repr__(self) -> str:
        return f"Viewer(session_id={self.session.session_id}, account_id={self.account.account_id})"

    @property
    def email(self) -> str:
        return self.session.email

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def cross_site(request: Request) -> bool:
    """A browser that says the form came from another site (Fetch Metadata): refused before anything else."""
    return request.headers.get("sec-fetch-site", "").lower() == "cross-site"


class SessionAuth:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        clock: Callable[[], datetime],
        metrics: Metrics,
        pages: Pages,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._metrics = metrics
        self._pages = pages
        self.idle = timedelta(seconds=settings.session_idle_timeout)
        self.lifetime = timedelta(seconds=settings.session_lifetime)
        self._touch_interval = min(TOUCH_INTERVAL, self.idle / 4)
        self.cookies = Cookies(
            secure=not plain_http_loopback(settings.dashboard_url),
            session_lifetime=int(settings.session_lifetime),
        )

    async def viewer(self, request: Request) -> Viewer | None:
        token = self.cookies.session_token(request.cookies)
        if token is None:
            return None
        return await run_in_threadpool(self._load, token)

    def _load(self, token: str) -> Viewer | None:
        now = self._clock()
        with read_transaction(self._engine) as conn:
            session = sessions.find_session(conn, rules.identity(token), now, self.idle, self.lifetime)
            if session is None:
                return None
            owned = keys.accounts_of(conn, session.email)
        if now - session.last_seen_at >= self._touch_interval:
            with write_transaction(self._engine) as conn:
                sessions.touch_session(conn, session.session_id, now)
        shown = next(a for a in owned if a.account_id == session.account_id)
        return Viewer(session, token, shown, tuple(owned))

    def to_sign_in(self, request: Request) -> Response:
        """Where a request without a live session goes: sign-in, then back to the page it asked for."""
        back = safe_next(request.url.path) if request.method == "GET" else None
        query = f"?{urlencode({'next': back})}" if back else ""
        response = RedirectResponse(f"{PREFIX}/sign-in{query}", status_code=303)
        if request.cookies.get(self.cookies.session):
            self.cookies.end_session(response)  # a dead session's cookie is of no more use
        return response

    async def page_viewer(self, request: Request) -> Viewer | Response:
        """The viewer of a signed-in page, or the redirect to sign-in."""
        viewer = await self.viewer(request)
        return self.to_sign_in(request) if viewer is None else viewer

    async def signed_form(self, request: Request) -> tuple[Viewer, dict[str, str]] | Response:
        """A signed-in form with its CSRF token checked, or the response refusing it (changing nothing)."""
        if cross_site(request):
            return self._refuse_csrf(request, None)
        viewer = await self.viewer(request)
        if viewer is None:
            return self.to_sign_in(request)
        form = await self._checked_form(request, viewer.token, viewer)
        return form if isinstance(form, Response) else (viewer, form)

    async def anonymous_form(self, request: Request) -> dict[str, str] | Response:
        """A form shown before sign-in, its token checked against the browser's form cookie."""
        if cross_site(request):
            return self._refuse_csrf(request, None)
        return await self._checked_form(request, self.cookies.form_token(request.cookies), None)

    async def _checked_form(
        self, request: Request, secret: str | None, viewer: Viewer | None
    ) -> dict[str, str] | Response:
        """The form, if it can be read and carries the CSRF token of ``secret``."""
        try:
            form = await read_form(request)
        except FormError as exc:
            return self._pages.message(request, exc.status, "That did not work", exc.message, viewer=viewer)
        if not csrf_ok(secret, form.get("csrf_token")):
            return self._refuse_csrf(request, viewer)
        return form

    def _refuse_csrf(self, request: Request, viewer: Viewer | None) -> Response:
        self._metrics.csrf_refusals.inc()
        log.info("dashboard form refused: CSRF token", extra={"fields": {"path": route_of(request)}})
        return self._pages.message(
            request,
            403,
            "This form has expired",
            "Nothing was changed. Go back, reload the page and try again.",
            viewer=viewer,
        )
