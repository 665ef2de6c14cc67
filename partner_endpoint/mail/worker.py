"""The mail worker: sends what the outbox holds, retries with backoff, marks what was sent.

Runs inside ``serve`` (one per process) or alone (``soundpiece-partner mail-worker``);
several workers on one PostgreSQL database never take the same row at once.
"""

from __future__ import annotations

import asyncio
import logging
import re
from datetime import timedelta

from sqlalchemy import Engine
from starlette.concurrency import run_in_threadpool

from partner_endpoint.clock import SYSTEM_CLOCK, Clock
from partner_endpoint.mail.backoff import backoff_seconds
from partner_endpoint.mail.composer import Composer
from partner_endpoint.mail.letters import MailContext
from partner_endpoint.mail.transport import Delivery, MailTransport, transport_for
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.settings import Settings
from partner_endpoint.store import activity, api_keys, outbox
from partner_endpoint.store.activity import MAIL_WORKER
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.secretbox import SecretBox

log = logging.getLogger(__name__)


def mail_context(settings: Settings) -> MailContext:
    return MailContext(
        sender=settings.mail_from,
        docs_url=settings.docs_url,
        dashboard_url=settings.dashboard_url if settings.dashboard else None,
    )


def _failure(exc: Exception, recipient: str) -> str:
    """A failed delivery as logged and kept: the error, the recipient's address cut out (an SMTP
    refusal quotes it; logs name addresses by hash only)."""
    return re.sub(re.escape(recipient), "<recipient>", repr(exc), flags=re.IGNORECASE)


class MailWorker:
    def __init__(
        self,
        engine: Engine,
        transport: MailTransport,
        metrics: Metrics,
        composer: Composer,
        *,
        max_attempts: int = 12,
        poll_interval: float = 5.0,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self._engine = engine
        self._transport = transport
        self._composer = composer
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._poll_interval = poll_interval
        self._clock = clock
        self._unrecorded: list[outbox.OutgoingMail] = []
        """Delivered, not yet marked sent (the database was away)."""
        self._nudged = asyncio.Event()
        self._loop: asyncio.AbstractEventLoop | None = None

    @classmethod
    def from_settings(
        cls,
        engine: Engine,
        settings: Settings,
        metrics: Metrics,
        *,
        box: SecretBox | None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> MailWorker:
        """The worker ``serve`` and ``mail-worker`` run: transport, context and retries from settings."""
        return cls(
            engine,
            transport_for(settings),
            metrics,
            Composer(mail_context(settings), box),
            max_attempts=settings.mail_max_attempts,
            poll_interval=settings.mail_poll_interval,
            clock=clock,
        )

    async def run_once(self) -> int:
        """Send every due mail once; returns how many were sent.

        Claims batch after batch until none is due: a 1,000-key leak must not wait 500 polls.
        Each claimed row leaves the due set (sent, retried later, or leased), so this ends.
        """
        await self._record_sent()
        sent = 0
        while mails := await run_in_threadpool(self._claim):
            sent += await self._send(mails)
        return sent

    async def _send(self, mails: list[outbox.OutgoingMail]) -> int:
        """Try every claimed mail even if the database goes away meanwhile (the claim is already ours)."""
        sent = 0
        for mail in mails:
            try:
                message = self._composer(mail)
                await self._transport.send(Delivery(mail.message_id, mail.recipient, message))
            except Exception as exc:  # any rendering or delivery failure is retried later
                self._metrics.mail_failed.inc()
                error = _failure(exc, mail.recipient)
                log.warning(
                    "mail delivery failed",
                    extra={"fields": {"mail_id": mail.id, "attempt": mail.attempts + 1, "error": error}},
                )
                try:
                    await run_in_threadpool(self._mark_failed, mail, error)
                except Exception as db_exc:  # the row stays leased and is retried when the lease ends
                    log.error("could not record a failed delivery", extra={"fields": {"error": repr(db_exc)}})
                continue
            self._unrecorded.append(mail)
            self._metrics.mail_sent.inc()
            sent += 1
            await self._record_sent()
        return sent

    async def _record_sent(self) -> None:
        """Mark delivered mails as sent; while the database is away, remember them, and retry.

        Forgetting a delivered mail would send it again when its lease ends.
        """
        if not self._unrecorded:
            return
        pending = list(self._unrecorded)
        try:
            await run_in_threadpool(self._mark_sent, pending)
        except Exception as exc:
            log.error(
                "could not record sent mail; kept to retry",
                extra={"fields": {"mails": len(pending), "error": repr(exc)}},
            )
            return
        del self._unrecorded[: len(pending)]
        for mail in pending:
            log.info("mail sent", extra={"fields": {"mail_id": mail.id, "message_id": mail.message_id}})

    def nudge(self) -> None:
        """Send what was just queued now, not at the next poll (someone awaits a sign-in link, or an
        owner their leak notice). From any thread: the services call it from the thread pool."""
        if self._loop is not None:
            self._loop.call_soon_threadsafe(self._nudged.set)

    async def run_forever(self, stop: asyncio.Event) -> None:
        self._loop = asyncio.get_running_loop()
        while not stop.is_set():
            self._nudged.clear()  # a nudge during this round brings the next one at once
            try:
                await self.run_once()
            except Exception:
                log.exception("mail worker iteration failed")
            await self._pause(stop)

    async def _pause(self, stop: asyncio.Event) -> None:
        """Until the poll interval is over, ``stop`` is set or someone nudges."""
        waiters = [asyncio.ensure_future(stop.wait()), asyncio.ensure_future(self._nudged.wait())]
        try:
            await asyncio.wait(waiters, timeout=self._poll_interval, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in waiters:
                waiter.cancel()

    def _claim(self) -> list[outbox.OutgoingMail]:
        with write_transaction(self._engine) as conn:
            return outbox.claim(conn, self._clock.now())

    def _mark_sent(self, mails: list[outbox.OutgoingMail]) -> None:
        with write_transaction(self._engine) as conn:
            for mail in mails:
                erase = self._composer.is_secret(mail)
                outbox.mark_sent(conn, mail.id, self._clock.now(), erase_payload=erase)
                if (kind := self._composer.sent_activity(mail)) and mail.key_id is not None:
                    account_id = api_keys.account_of(conn, mail.key_id)
                    activity.record(
                        conn, account_id, kind, self._clock.now(), MAIL_WORKER, key_id=mail.key_id
                    )

    def _mark_failed(self, mail: outbox.OutgoingMail, error: str) -> None:
        with write_transaction(self._engine) as conn:
            retry_at = self._clock.now() + timedelta(seconds=backoff_seconds(mail.attempts + 1))
            outbox.mark_failed(conn, mail, error, retry_at, self._max_attempts)
