"""The sign-in pages: ask for a link, confirm it, sign out, switch between an address's accounts.

What a sign-in does is :class:`~partner_endpoint.services.sign_in.SignInService`'s; these views
read forms, set cookies and render. Asking for a link answers the same, in the same time, whether
or not the address has an account: the link and its mail are made after the answer is sent.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from datetime import timedelta

from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import rules
from partner_endpoint.dashboard.forms import FormError, clean_email, safe_next, whole_number
from partner_endpoint.dashboard.pages import PREFIX, Pages
from partner_endpoint.dashboard.session_auth import SessionAuth, csrf_token, well_formed
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.services.sign_in import LINK_LIFETIME, RATE_WINDOW, SignInService, new_token
from partner_endpoint.store.db import NotFound
from partner_endpoint.web.clients import ClientAddresses
from partner_endpoint.web.unavailable import TRANSIENT_DATABASE_ERRORS, log_unavailable

log = logging.getLogger(__name__)


class SignInPages:
    def __init__(
        self,
        sign_in: SignInService,
        auth: SessionAuth,
        pages: Pages,
        metrics: Metrics,
        clients: ClientAddresses,
        mail_queued: Callable[[], None],
    ) -> None:
        self._sign_in = sign_in
        self._auth = auth
        self._pages = pages
        self._metrics = metrics
        self._clients = clients
        self._mail_queued = mail_queued

    # --- asking for a link --------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        after = safe_next(request.query_params.get("next"))
        if await self._auth.current(request) is not None:
            return RedirectResponse(after or f"{PREFIX}/keys", status_code=303)
        return self._form_page(request, "sign_in.html", {"next": after, "email": "", "error": None})

    def _form_page(
        self, request: Request, name: str, context: Mapping[str, object], status: int = 200
    ) -> Response:
        """A page with a form shown before sign-in; its CSRF token is tied to the browser's form cookie."""
        token = self._auth.cookies.form_token(request.cookies)
        fresh = token is None
        token = token or new_token()
        response = self._pages.render(request, name, {**context, "csrf": csrf_token(token)}, status=status)
        if fresh:
            self._auth.cookies.start_form(response, token)
        return response

    async def request_link(self, request: Request) -> Response:
        form = await self._auth.anonymous_form(request)
        after = safe_next(form.get("next"))
        try:
            email = clean_email(form.get("email"))
        except FormError as exc:
            context = {"next": after, "email": form.get("email", "")[:320], "error": exc.message}
            return self._form_page(request, "sign_in.html", context, status=exc.status)
        if not await run_in_threadpool(self._sign_in.admit, email, self._clients.bucket(request)):
            self._log_request(email, "limited")
            self._metrics.sign_in_requests.labels(result="rate_limited").inc()
            return self._pages.message(
                request,
                429,
                "Too many sign-in requests",
                "Wait an hour, then ask for a new link. The links already sent still work until they expire.",
                link=(f"{PREFIX}/sign-in", "Back to sign-in"),
                headers={"Retry-After": str(int(RATE_WINDOW.total_seconds()))},
            )
        self._metrics.sign_in_requests.labels(result="accepted").inc()
        # The link and its mail are made once the answer is sent: an address with an account costs
        # that work, one without does not, and the answer's time must not tell them apart.
        task = BackgroundTask(self._send_link, request, email, after)
        return RedirectResponse(f"{PREFIX}/sign-in/sent", status_code=303, background=task)

    async def _send_link(self, request: Request, email: str, after: str | None) -> None:
        """After the answer: the link and its mail if the address has an account (nobody is told)."""
        try:
            outcome = await run_in_threadpool(self._sign_in.send_link, email, after)
        except TRANSIENT_DATABASE_ERRORS as exc:  # the answer is sent: only the log can say it
            log_unavailable(request, exc)
            return
        self._log_request(email, outcome)
        if outcome == "queued":
            self._mail_queued()

    @staticmethod
    def _log_request(email: str, outcome: str) -> None:
        log.info(
            "dashboard sign-in link requested",
            extra={"fields": {"address_hash": rules.identity(email), "outcome": outcome}},
        )

    async def sent(self, request: Request) -> Response:
        return self._pages.render(request, "sign_in_sent.html", {"minutes": _minutes(LINK_LIFETIME)})

    # --- using a link ---------------------------------------------------------------------------

    async def link(self, request: Request) -> Response:
        """The emailed link asks before it signs in: mail scanners that open links must not use them up.

        The page names the address the link signs in, and the one it signs out: a link someone
        forwarded must not sign the reader in as that someone unawares.
        """
        token = well_formed(request.path_params["token"])
        email = None if token is None else await run_in_threadpool(self._sign_in.link_address, token)
        if email is None:
            return self._link_refused(request)
        viewer = await self._auth.current(request)
        context = {"token": token, "email": email, "replaced": None if viewer is None else viewer.email}
        return self._form_page(request, "sign_in_link.html", context)

    async def use_link(self, request: Request) -> Response:
        form = await self._auth.anonymous_form(request)
        token = well_formed(form.get("token"))
        previous = self._auth.cookies.session_token(request.cookies)
        client = self._clients.bucket(request)
        started = (
            None if token is None else await run_in_threadpool(self._sign_in.redeem, token, previous, client)
        )
        if started is None:
            self._metrics.sign_ins.labels(result="refused").inc()
            return self._link_refused(request)
        self._metrics.sign_ins.labels(result="ok").inc()
        log.info("dashboard session started", extra={"fields": {"session_id": started.session_id}})
        response = RedirectResponse(started.next_path or f"{PREFIX}/keys", status_code=303)
        self._auth.cookies.start_session(response, started.token)
        return response

    def _link_refused(self, request: Request) -> Response:
        return self._pages.message(
            request,
            400,
            "This sign-in link does not work",
            f"It was already used, or it is over {_minutes(LINK_LIFETIME)} minutes old. Ask for a new one.",
            link=(f"{PREFIX}/sign-in", "Get a new sign-in link"),
        )

    # --- signing out, switching accounts --------------------------------------------------------

    async def sign_out(self, request: Request) -> Response:
        viewer, _form = await self._auth.signed_form(request)
        await run_in_threadpool(
            self._sign_in.end, viewer.signed_in, viewer.token, self._clients.bucket(request)
        )
        log.info("dashboard session ended", extra={"fields": {"session_id": viewer.session_id}})
        response = RedirectResponse(f"{PREFIX}/sign-in?done=signed-out", status_code=303)
        self._auth.cookies.end_session(response)
        return response

    async def switch_account(self, request: Request) -> Response:
        viewer, form = await self._auth.signed_form(request)
        wanted = whole_number(form.get("account_id"), 0)
        try:
            await run_in_threadpool(self._sign_in.show, viewer.signed_in, wanted)
        except NotFound:
            return self._pages.message(
                request, 404, "No such account", "That account is not one of yours.", viewer=viewer
            )
        return RedirectResponse(safe_next(form.get("next")) or f"{PREFIX}/keys", status_code=303)


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)
