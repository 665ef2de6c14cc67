"""The mail worker: sends what the outbox holds, retries with backoff, marks what was sent.

Runs inside ``serve`` (one per process) or alone (``soundpiece-partner mail-worker``);
several workers on one PostgreSQL database never take the same row at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import datetime

from sqlalchemy import Engine

from partner_endpoint.clock import utc_now
from partner_endpoint.mail import outbox
from partner_endpoint.mail.transport import MailTransport
from partner_endpoint.metrics import Metrics
from partner_endpoint.store.db import write_transaction

log = logging.getLogger(__name__)


class MailWorker:
    def __init__(
        self,
        engine: Engine,
        transport: MailTransport,
        metrics: Metrics,
        *,
        max_attempts: int = 12,
        poll_interval: float = 5.0,
        clock: Callable[[], datetime] = utc_now,
    ) -> None:
        self._engine = engine
        self._transport = transport
        self._metrics = metrics
        self._max_attempts = max_attempts
        self._poll_interval = poll_interval
        self._clock = clock

    async def run_once(self) -> int:
        """Send every due mail once; returns how many were sent.

        Claims batch after batch until none is due: a 1,000-key leak must not wait 500 polls.
        Each claimed row leaves the due set (sent, retried later, or leased), so this ends.
        """
        sent = 0
        while mails := await asyncio.to_thread(self._claim):
            sent += await self._send(mails)
        return sent

    async def _send(self, mails: list[outbox.OutgoingMail]) -> int:
        sent = 0
        for mail in mails:
            try:
                await self._transport.send(mail)
            except Exception as exc:  # any delivery failure is retried later
                self._metrics.mail_failed.inc()
                log.warning(
                    "mail delivery failed",
                    extra={"fields": {"mail_id": mail.id, "attempt": mail.attempts + 1, "error": repr(exc)}},
                )
                await asyncio.to_thread(self._mark_failed, mail, repr(exc))
                continue
            await asyncio.to_thread(self._mark_sent, mail.id)
            self._metrics.mail_sent.inc()
            sent += 1
            log.info("mail sent", extra={"fields": {"mail_id": mail.id, "message_id": mail.message_id}})
        return sent

    async def run_forever(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except Exception:
                log.exception("mail worker iteration failed")
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), timeout=self._poll_interval)

    def _claim(self) -> list[outbox.OutgoingMail]:
        with write_transaction(self._engine) as conn:
            return outbox.claim(conn, self._clock())

    def _mark_sent(self, mail_id: int) -> None:
        with write_transaction(self._engine) as conn:
            outbox.mark_sent(conn, mail_id, self._clock())

    def _mark_failed(self, mail: outbox.OutgoingMail, error: str) -> None:
        with write_transaction(self._engine) as conn:
            outbox.mark_failed(conn, mail, error, self._clock(), self._max_attempts)
