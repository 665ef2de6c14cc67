"""Signing in by emailed link, and the sessions it starts: the dashboard's identity.

An owner address is an identity: whoever can read its mail may act for every account that names
it as owner, so a session belongs to the address and shows one of its accounts at a time (the
oldest first). Links and session cookies are random tokens of which only SHA-256 hashes are kept.
Asking for a link costs the same, and says the same, whether or not the address has an account:
:meth:`SignInService.admit` is all a request waits for, :meth:`SignInService.send_link` runs after
the answer.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import timedelta
from typing import Literal

from sqlalchemy import Engine

import rules
from partner_endpoint.clock import Clock
from partner_endpoint.mail.sign_in_mail import SignInMail
from partner_endpoint.settings import Settings
from partner_endpoint.store import accounts, activity, outbox, rate_limits, sessions
from partner_endpoint.store.activity import Actor
from partner_endpoint.store.db import NotFound, read_transaction, write_transaction
from partner_endpoint.store.secretbox import SecretBox

LINK_LIFETIME = timedelta(minutes=15)
RATE_WINDOW = timedelta(hours=1)
_BUCKETS = "sign-in-"
"""The prefix of this service's rate limit buckets: it prunes only those (the revocation API's have a
window of their own)."""
TOUCH_INTERVAL = timedelta(seconds=60)
"""A session's last activity is written at most once a minute, and at least four times per idle
timeout (a shorter one would end sessions in use): the idle timeout is that precise."""

Sent = Literal["queued", "no-account"]


def new_token() -> str:
    """256 random bits, URL-safe (43 characters): a link's or a session's."""
    return secrets.token_urlsafe(32)


@dataclass(frozen=True, slots=True)
class Limits:
    per_address: int
    """Links one address may ask for per :data:`RATE_WINDOW`."""
    per_client: int
    """Links one client (an IPv4 address or IPv6 /64) may ask for per :data:`RATE_WINDOW`."""
    idle: timedelta
    lifetime: timedelta

    @classmethod
    def from_settings(cls, settings: Settings) -> Limits:
        return cls(
            per_address=settings.sign_in_limit_per_address,
            per_client=settings.sign_in_limit_per_client,
            idle=timedelta(seconds=settings.session_idle_timeout),
            lifetime=timedelta(seconds=settings.session_lifetime),
        )


@dataclass(frozen=True, slots=True)
class SignedIn:
    """A session as a request sees it: the address, the account shown, every account of the address."""

    session: sessions.Session
    account: accounts.Account
    accounts: tuple[accounts.Account, ...]

    @property
    def email(self) -> str:
        return self.session.email


@dataclass(frozen=True, slots=True)
class Started:
    token: str
    """The new session's cookie value: secret, returned once."""
    session_id: int
    next_path: str | None

    def __repr__(self) -> str:
        return f"Started(session_id={self.session_id}, <token redacted>)"


class _OverLimit(Exception):
    """Raised inside the write transaction to roll back the hits of a request that is refused."""


class SignInService:
    def __init__(
        self, engine: Engine, box: SecretBox | None, clock: Clock, *, limits: Limits, sender: str
    ) -> None:
        """``box`` seals the mailed links; without it (the command line's :meth:`mint_link`) no link
        can be mailed."""
        self._engine = engine
        self._box = box
        self._clock = clock
        self._limits = limits
        self._sender = sender
        self._touch_interval = min(TOUCH_INTERVAL, limits.idle / 4)

    # --- asking for a link ------------------------------------------------------------------------

    def admit(self, email: str, client: str) -> bool:
        """Whether a request for a link is within both budgets: refused (and nothing written) while
        either is spent, else counted, client first.

        A refused request must not spend the address's budget, or one client over its own limit
        could keep an address's owner from ever getting a link; nor may it cost a write.
        """
        now = self._clock.now()
        budgets = (
            (f"{_BUCKETS}client:{client}", self._limits.per_client),
            (f"{_BUCKETS}address:{rules.identity(email)}", self._limits.per_address),
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

    def send_link(self, email: str, next_path: str | None) -> Sent:
        """The link and its mail if the address owns an account; the housekeeping either way."""
        now = self._clock.now()
        with write_transaction(self._engine) as conn:
            rate_limits.prune(conn, now, RATE_WINDOW, prefix=_BUCKETS)
            sessions.prune(conn, now, self._limits.idle, self._limits.lifetime)
            owned = accounts.of_owner(conn, email)
            if not owned:
                return "no-account"
            token = new_token()
            sessions.create_link(conn, rules.identity(token), email, next_path, now, LINK_LIFETIME)
            # To the address as the account has it, not as typed: the typed one only matched it.
            mail = SignInMail(owned[0].owner_email, token, now, now + LINK_LIFETIME)
            if self._box is None:
                raise RuntimeError("mailing a sign-in link needs the encryption key")
            outbox.enqueue(conn, [mail.letter(self._box)], sender=self._sender, now=now)
        return "queued"

    def mint_link(self, email: str) -> str:
        """A link's token for an owner, handed to an operator instead of mailed (NotFound if the
        address owns no account)."""
        now = self._clock.now()
        token = new_token()
        with write_transaction(self._engine) as conn:
            if not accounts.of_owner(conn, email):
                raise NotFound(f"no account has the owner address {email}")
            sessions.create_link(conn, rules.identity(token), email.lower(), None, now, LINK_LIFETIME)
        return token

    # --- using a link -----------------------------------------------------------------------------

    def link_address(self, token: str) -> str | None:
        """The address a link would sign in, while it is usable; it redeems nothing."""
        with read_transaction(self._engine) as conn:
            return sessions.usable_link(conn, rules.identity(token), self._clock.now())

    def redeem(self, token: str, previous: str | None, client: str | None = None) -> Started | None:
        """Use the link up and start a session (ending ``previous``, this browser's session); None if
        the link is unknown, used or expired, or its address no longer owns an account."""
        now = self._clock.now()
        with write_transaction(self._engine) as conn:
            link = sessions.redeem_link(conn, rules.identity(token), now)
            owned = [] if link is None else accounts.of_owner(conn, link.email)
            if link is None or not owned:
                return None
            if previous is not None:
                sessions.end_session(conn, rules.identity(previous))
            session_token = new_token()
            session_id = sessions.start_session(
                conn, rules.identity(session_token), link.email, owned[0].account_id, now
            )
            ids = [a.account_id for a in owned]
            activity.record(conn, ids, "signed_in", now, Actor(link.email, client))
        return Started(session_token, session_id, link.next_path)

    # --- sessions ---------------------------------------------------------------------------------

    def signed_in(self, token: str, *, active: bool = True) -> SignedIn | None:
        """The live session of a cookie, its last activity written now and then; None if there is none.

        ``active=False`` is a read the owner did not make (a page polling for figures): it must not
        keep an idle session alive, so it writes nothing.
        """
        now = self._clock.now()
        with read_transaction(self._engine) as conn:
            session = sessions.find_session(
                conn, rules.identity(token), now, self._limits.idle, self._limits.lifetime
            )
            if session is None:
                return None
            owned = accounts.of_owner(conn, session.email)
        if active and now - session.last_seen_at >= self._touch_interval:
            with write_transaction(self._engine) as conn:
                sessions.touch_session(conn, session.session_id, now)
        shown = next(a for a in owned if a.account_id == session.account_id)
        return SignedIn(session, shown, tuple(owned))

    def show(self, signed_in: SignedIn, account_id: int) -> None:
        """Show another of the address's accounts (NotFound for an account that is not one of them)."""
        if account_id not in {a.account_id for a in signed_in.accounts}:
            raise NotFound(f"no account {account_id} of this address")
        with write_transaction(self._engine) as conn:
            sessions.show_account(conn, signed_in.session.session_id, account_id)

    def end(self, signed_in: SignedIn, token: str, client: str | None = None) -> None:
        with write_transaction(self._engine) as conn:
            if sessions.end_session(conn, rules.identity(token)):
                ids = [a.account_id for a in signed_in.accounts]
                activity.record(conn, ids, "signed_out", self._clock.now(), Actor(signed_in.email, client))
