"""Leak reports, whatever their origin: record them, apply the leak policy, mail the owners.

All three happen in one transaction, so a crash leaves either all of them or none, and a
redelivered report finds the work done and queues nothing twice. The mail is queued as data;
the mail worker renders it, outside this transaction. After the commit, ``key_changed`` tells
this process's authentication cache (the others follow the key change log) and ``mail_queued``
has a mail worker here send at once; both may be called from any thread.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from sqlalchemy import Engine

from partner_endpoint.clock import Clock
from partner_endpoint.domain.reported_by import platform
from partner_endpoint.mail import leak_notice
from partner_endpoint.settings import LeakPolicy, Settings
from partner_endpoint.store import activity, leaks, outbox
from partner_endpoint.store.activity import Actor
from partner_endpoint.store.db import read_transaction, write_transaction
from partner_endpoint.store.leaks import NOTHING, BatchOutcome, NewSighting, Sighting


def _nothing(*_args: object) -> None:
    return None


class LeakService:
    def __init__(
        self,
        engine: Engine,
        clock: Clock,
        *,
        policy: LeakPolicy,
        sender: str,
        key_changed: Callable[[int], None] = _nothing,
        mail_queued: Callable[[], None] = _nothing,
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._policy = policy
        self._sender = sender
        self._key_changed = key_changed
        self._mail_queued = mail_queued

    @classmethod
    def from_settings(
        cls,
        engine: Engine,
        settings: Settings,
        clock: Clock,
        *,
        key_changed: Callable[[int], None] = _nothing,
        mail_queued: Callable[[], None] = _nothing,
    ) -> LeakService:
        return cls(
            engine,
            clock,
            policy=settings.leak_policy,
            sender=settings.mail_from,
            key_changed=key_changed,
            mail_queued=mail_queued,
        )

    def respond(self, sightings: Sequence[Sighting]) -> BatchOutcome:
        """Record a batch in one transaction; batches that name no issued credential write nothing.

        Most reports are false positives, so a plain read comes first: it takes no lock, and
        SQLite's single write lock is only taken when there is work to do.
        """
        if not sightings:
            return NOTHING
        with read_transaction(self._engine) as conn:
            if not leaks.any_issued(conn, [s.token_hash for s in sightings]):
                return NOTHING
        now = self._clock.now()
        with write_transaction(self._engine) as conn:
            outcome = leaks.record_batch(conn, sightings, policy=self._policy, now=now)
            mails = [leak_notice.letter(leak) for leak in outcome.leaks]
            outbox.enqueue(conn, mails, sender=self._sender, now=now)
            for platform, seen in _by_platform(outcome.new_sightings).items():
                reported = [
                    activity.Change(
                        s.account_id,
                        "leak_reported",
                        s.key_id,
                        {"url": s.url, "source": s.source, "reported_by": platform},
                    )
                    for s in seen
                ]
                activity.record_all(conn, reported, now, Actor(platform))
        for leak in outcome.leaks:
            self._key_changed(leak.key_id)
        if outcome.leaks:
            self._mail_queued()
        return outcome

    def recent(self, limit: int = 1000) -> list[dict[str, Any]]:
        """The latest leak events, newest first (``leaks list``)."""
        with read_transaction(self._engine) as conn:
            return leaks.list_leaks(conn, limit)


def _by_platform(seen: Sequence[NewSighting]) -> dict[str, list[NewSighting]]:
    """New sightings by the platform that reported them, as the activity log names it."""
    grouped: dict[str, list[NewSighting]] = {}
    for sighting in seen:
        grouped.setdefault(platform(sighting.origin), []).append(sighting)
    return grouped
