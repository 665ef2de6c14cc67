"""Signing in by emailed link, signing out, and switching between the accounts of one owner address.

An owner address is an identity: whoever can read its mail may act for every
account that names it as owner, so a session belongs to the address and shows
one of its accounts at a time (the oldest first). Asking for a link gives the
same answer, in the same time (the link and its mail are made after it), and
does the same writes bar the link and the mail, for an address that owns
nothing, so the page tells nobody which addresses have accounts.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Engine
from starlette.background import BackgroundTask
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import rules
from partner_endpoint.dashboard.forms import FormError, clean_email, safe_next, whole_number
from partner_endpoint.dashboard.pages import PREFIX, Pages
from partner_endpoint.dashboard.session_auth import SessionAuth, csrf_token, new_token, well_formed
from partner_endpoint.mail.queue import queue
from partner_endpoint.mail.sign_in_mail import SignInMail
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.settings import Settings
from partner_endpoint.store import keys, rate_limits, sessions
from partner_endpoint.store.db import read_transaction, write_transaction
from partner_endpoint.store.secretbox import SecretBox
from partner_endpoint.web.clients import ClientAddresses
from partner_endpoint.web.unavailable import TRANSIENT_DATABASE_ERRORS, log_unavailable

log = logging.getLogger(__name__)

LINK_LIFETIME = timedelta(minutes=15)
RATE_WINDOW = timedelta(hours=1)

Made = Literal["queued", "no-account"]


class _OverLimit(Exception):
    """Raised inside the write transaction to roll back the hits of a request that is refused."""


class SignIn:
    def __init__(
        self,
        engine: Engine,
        settings: Settings,
        box: SecretBox,
        clock: Callable[[], datetime],
        metrics: Metrics,
        auth: SessionAuth,
        pages: Pages,
        mail_queued: Callable[[], None],
    ) -> None:
        self._engine = engine
        self._settings = settings
        self._box = box
        self._clock = clock
        self._metrics = metrics
        self._auth = auth
        self._pages = pages
        self._mail_queued = mail_queued
        self._clients = ClientAddresses(settings)

    # --- asking for a link --------------------------------------------------------------------

    async def page(self, request: Request) -> Response:
        after = safe_next(request.query_params.get("next"))
        if await self._auth.viewer(request) is not None:
            return RedirectResponse(after or f"{PREFIX}/keys", status_code=303)
        return self._form_page(request, "sign_in.html", {"next": after, "email": "", "error": None})

    def _form_page(
        self, request: Request, name: str, context: dict[str, object], status: int = 200
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
        if isinstance(form, Response):
            return form
        after = safe_next(form.get("next"))
        try:
            email = clean_email(form.get("email"))
        except FormError as exc:
            context = {"next": after, "email": form.get("email", "")[:320], "error": exc.message}
            return self._form_page(request, "sign_in.html", context, status=exc.status)
        bucket = f"sign-in-client:{self._clients.key(request)}"  # the API's rule
        if not await run_in_threadpool(self._admit, email, bucket):
            log.info(
                "dashboard sign-in link requested",
                extra={"fields": {"address_hash": rules.identity(email), "outcome": "limited"}},
            )
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
        task = BackgroundTask(self._make_link, request, email, after)
        return RedirectResponse(f"{PREFIX}/sign-in/sent", status_code=303, background=task)

    def _admit(self, email: str, client: str) -> bool:
        """Whether the request is within both budgets: refused (and nothing written) while either is
        spent, else counted, client first.

        A refused request must not spend the address's budget, or one client over its own limit
        could keep an address's owner from ever getting a link; nor may it cost a write.
        """
        now = self._clock()
        budgets = (
            (client, self._settings.sign_in_limit_per_client),
            (f"sign-in-address:{rules.identity(email)}", self._settings.sign_in_limit_per_address),
        )
        with read_transaction(self._engine) as conn:
            if any(rate_limits.spent(conn, bucket, now, RATE_WINDOW) >= limit for bucket, limit in budgets):
                return False
        try:
            with write_transaction(self._engine) as conn:
                for bucket, limit in budgets:  # a race past the check above: refused, rolled back
                    if rate_limits.hit(conn, bucket, now, RATE_WINDOW) > limit:
                        raise _OverLimit
        except _OverLimit:
            return False
        return True

    async def _make_link(self, request: Request, email: str, after: str | None) -> None:
        """After the answer: the link and its mail if the address has an account (nobody is told)."""
        try:
            outcome = await run_in_threadpool(self._link_for, email, after)
        except TRANSIENT_DATABASE_ERRORS as exc:  # the answer is sent: only the log can say it
            log_unavailable(request, exc)
            return
        log.info(
            "dashboard sign-in link requested",
            extra={"fields": {"address_hash": rules.identity(email), "outcome": outcome}},
        )
        if outcome == "queued":
            self._mail_queued()

    def _link_for(self, email: str, after: str | None) -> Made:
        """The link and its mail if the address owns an account; the housekeeping either way."""
        now = self._clock()
        with write_transaction(self._engine) as conn:
            rate_limits.prune(conn, now, RATE_WINDOW)
            sessions.prune(conn, now, self._auth.idle, self._auth.lifetime)
            owned = keys.accounts_of(conn, email)
            if not owned:
                return "no-account"
            token = new_token()
            sessions.create_link(conn, rules.identity(token), email, after, now, LINK_LIFETIME)
            # To the address as the account has it, not as typed: the typed one only matched it.
            mail = SignInMail(owned[0].owner_email, token, now, now + LINK_LIFETIME)
            queue(conn, [mail.letter()], sender=self._settings.mail_from, now=now, box=self._box)
        return "queued"

    async def sent(self, request: Request) -> Response:
        return self._pages.render(request, "sign_in_sent.html", {"minutes": _minutes(LINK_LIFETIME)})

    # --- using a link ---------------------------------------------------------------------------

    async def link(self, request: Request) -> Response:
        """The emailed link asks before it signs in: mail scanners that open links must not use them up.

        The page names the address the link signs in, and the one it signs out: a link someone
        forwarded must not sign the reader in as that someone unawares.
        """
        token = well_formed(request.path_params["token"])
        email = None if token is None else await run_in_threadpool(self._link_email, token)
        if email is None:
            return self._link_refused(request)
        viewer = await self._auth.viewer(request)
        context = {"token": token, "email": email, "replaced": None if viewer is None else viewer.email}
        return self._form_page(request, "sign_in_link.html", context)

    def _link_email(self, token: str) -> str | None:
        with read_transaction(self._engine) as conn:
            return sessions.usable_link(conn, rules.identity(token), self._clock())

    async def use_link(self, request: Request) -> Response:
        form = await self._auth.anonymous_form(request)
        if isinstance(form, Response):
            return form
        token = well_formed(form.get("token"))
        previous = self._auth.cookies.session_token(request.cookies)
        started = None if token is None else await run_in_threadpool(self._start, token, previous)
        if started is None:
            self._metrics.sign_ins.labels(result="refused").inc()
            return self._link_refused(request)
        session_token, session_id, after = started
        self._metrics.sign_ins.labels(result="ok").inc()
        log.info("dashboard session started", extra={"fields": {"session_id": session_id}})
        response = RedirectResponse(after or f"{PREFIX}/keys", status_code=303)
        self._auth.cookies.start_session(response, session_token)
        return response

    def _start(self, token: str, previous: str | None) -> tuple[str, int, str | None] | None:
        now = self._clock()
        with write_transaction(self._engine) as conn:
            link = sessions.redeem_link(conn, rules.identity(token), now)
            owned = [] if link is None else keys.accounts_of(conn, link.email)
            if link is None or not owned:
                return None
            if previous is not None:
                sessions.end_session(conn, rules.identity(previous))
            session_token = new_token()
            session_id = sessions.start_session(
                conn, rules.identity(session_token), link.email, owned[0].account_id, now
            )
        return session_token, session_id, link.next_path

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
        posted = await self._auth.signed_form(request)
        if isinstance(posted, Response):
            return posted
        viewer, _form = posted
        await run_in_threadpool(self._end, viewer.token)
        log.info("dashboard session ended", extra={"fields": {"session_id": viewer.session.session_id}})
        response = RedirectResponse(f"{PREFIX}/sign-in?done=signed-out", status_code=303)
        self._auth.cookies.end_session(response)
        return response

    def _end(self, token: str) -> None:
        with write_transaction(self._engine) as conn:
            sessions.end_session(conn, rules.identity(token))

    async def switch_account(self, request: Request) -> Response:
        posted = await self._auth.signed_form(request)
        if isinstance(posted, Response):
            return posted
        viewer, form = posted
        wanted = whole_number(form.get("account_id"), 0)
        if wanted not in {a.account_id for a in viewer.accounts}:
            return self._pages.message(
                request, 404, "No such account", "That account is not one of yours.", viewer=viewer
            )
        await run_in_threadpool(self._show, viewer.session.session_id, wanted)
        return RedirectResponse(safe_next(form.get("next")) or f"{PREFIX}/keys", status_code=303)

    def _show(self, session_id: int, account_id: int) -> None:
        with write_transaction(self._engine) as conn:
            sessions.show_account(conn, session_id, account_id)


def _minutes(span: timedelta) -> int:
    return int(span.total_seconds() // 60)
