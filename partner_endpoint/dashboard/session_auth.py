"""Session authentication for the dashboard: cookies, CSRF tokens, and who is signed in.

* The session cookie holds a random token; the database holds its SHA-256 only, so a copy of
  the database signs nobody in. ``HttpOnly``, ``SameSite=Lax``, ``Secure`` (with the
  ``__Host-`` prefix, which pins it to this host) unless the dashboard is plain http on loopback.
* The CSRF token of a form is an HMAC of the session's token: tied to the server-side session,
  unknown to anyone who cannot read the cookie, compared in constant time. Forms shown before
  sign-in (request a link, use a link) are tied the same way to a random "form" cookie.

Handlers ask for what they need (:meth:`SessionAuth.viewer`, :meth:`SessionAuth.signed_form`,
:meth:`SessionAuth.anonymous_form`) and get it or an exception that the dashboard's handlers turn
into the answer: :class:`SignInRequired` a redirect to sign-in, :class:`FormRefused` and
:class:`~partner_endpoint.dashboard.forms.FormError` a page that says why, changing nothing.
"""

from __future__ import annotations

import hashlib
import hmac
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import urlencode

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from partner_endpoint.dashboard.forms import read_form, safe_next
from partner_endpoint.dashboard.pages import PREFIX
from partner_endpoint.ops.logs import route_of
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.services.sign_in import SignedIn, SignInService
from partner_endpoint.store.accounts import Account

log = logging.getLogger(__name__)

_TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_CSRF_CONTEXT = b"soundpiece dashboard csrf v1"


class SignInRequired(Exception):
    """No live session: the answer is the sign-in page (then back to the page asked for)."""


class FormRefused(Exception):
    """A form sent without its CSRF token, or from another site: 403, nothing changed."""


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


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who is signed in (an owner address), the account shown, and every account of that address."""

    signed_in: SignedIn
    token: str

    def __repr__(self) -> str:
        return f"Viewer(session_id={self.session_id}, account_id={self.account.account_id})"

    @property
    def session_id(self) -> int:
        return self.signed_in.session.session_id

    @property
    def email(self) -> str:
        return self.signed_in.email

    @property
    def account(self) -> Account:
        return self.signed_in.account

    @property
    def accounts(self) -> tuple[Account, ...]:
        return self.signed_in.accounts

    @property
    def csrf(self) -> str:
        return csrf_token(self.token)


def cross_site(request: Request) -> bool:
    """A browser that says the form came from another site (Fetch Metadata): refused before anything else."""
    return request.headers.get("sec-fetch-site", "").lower() == "cross-site"


class SessionAuth:
    def __init__(self, sign_in: SignInService, cookies: Cookies, metrics: Metrics) -> None:
        self._sign_in = sign_in
        self.cookies = cookies
        self._metrics = metrics

    async def current(self, request: Request, *, active: bool = True) -> Viewer | None:
        """Who is signed in, if anyone (pages shown either way)."""
        token = self.cookies.session_token(request.cookies)
        if token is None:
            return None
        signed_in = await run_in_threadpool(self._sign_in.signed_in, token, active=active)
        viewer = None if signed_in is None else Viewer(signed_in, token)
        request.state.viewer = viewer  # for the pages the error handlers render
        return viewer

    async def viewer(self, request: Request, *, active: bool = True) -> Viewer:
        """The viewer of a signed-in page; SignInRequired without one.

        ``active=False`` for reads a script makes on its own (live figures), which must not keep an
        idle session alive.
        """
        viewer = await self.current(request, active=active)
        if viewer is None:
            raise SignInRequired
        return viewer

    async def signed_form(self, request: Request) -> tuple[Viewer, dict[str, str]]:
        """A signed-in form with its CSRF token checked (FormRefused, FormError, SignInRequired)."""
        if cross_site(request):
            self._refuse(request)
        viewer = await self.viewer(request)
        return viewer, await self._checked_form(request, viewer.token)

    async def anonymous_form(self, request: Request) -> dict[str, str]:
        """A form shown before sign-in, its token checked against the browser's form cookie."""
        if cross_site(request):
            self._refuse(request)
        return await self._checked_form(request, self.cookies.form_token(request.cookies))

    async def _checked_form(self, request: Request, secret: str | None) -> dict[str, str]:
        form = await read_form(request)
        if not csrf_ok(secret, form.get("csrf_token")):
            self._refuse(request)
        return form

    def _refuse(self, request: Request) -> None:
        self._metrics.csrf_refusals.inc()
        log.info("dashboard form refused: CSRF token", extra={"fields": {"path": route_of(request)}})
        raise FormRefused

    def to_sign_in(self, request: Request) -> Response:
        """Where a request without a live session goes: sign-in, then back to the page it asked for."""
        back = safe_next(request.url.path) if request.method == "GET" else None
        query = f"?{urlencode({'next': back})}" if back else ""
        response = RedirectResponse(f"{PREFIX}/sign-in{query}", status_code=303)
        if request.cookies.get(self.cookies.session):
            self.cookies.end_session(response)  # a dead session's cookie is of no more use
        return response
