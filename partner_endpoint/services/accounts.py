"""Accounts: created with a checked owner address, listed, their IP allowlists changed.

The command line is the only caller today (owners see their allowlist read-only); a change made
here is logged in the key change log in its own transaction, and ``account_changed`` tells this
process's authentication cache at once after the commit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from sqlalchemy import Engine

from partner_endpoint.clock import Clock
from partner_endpoint.domain.networks import parse_network
from partner_endpoint.domain.owner_address import owner_address
from partner_endpoint.store import accounts, activity
from partner_endpoint.store.activity import COMMAND_LINE, Actor
from partner_endpoint.store.db import read_transaction, write_transaction


def _nothing(_account_id: int) -> None:
    return None


class AccountService:
    def __init__(
        self, engine: Engine, clock: Clock, account_changed: Callable[[int], None] = _nothing
    ) -> None:
        self._engine = engine
        self._clock = clock
        self._account_changed = account_changed

    def create(self, email: str, allowlist: Sequence[str] = ()) -> int:
        """ValueError for an address that is not one plain ``local@domain`` or a bad network."""
        networks = _networks(allowlist)
        with write_transaction(self._engine) as conn:
            return accounts.create(conn, owner_address(email), networks, self._clock.now())

    def summaries(self) -> list[accounts.AccountSummary]:
        with read_transaction(self._engine) as conn:
            return accounts.summaries(conn)

    def get(self, account_id: int) -> accounts.Account:
        with read_transaction(self._engine) as conn:
            return accounts.get(conn, account_id)

    def set_allowlist(
        self, account_id: int, allowlist: Sequence[str], actor: Actor = COMMAND_LINE
    ) -> tuple[str, ...]:
        """Replace the allowlist (empty: any address); the new one."""
        return self._change(account_id, lambda _current: _networks(allowlist), actor)

    def allow(self, account_id: int, values: Sequence[str], actor: Actor = COMMAND_LINE) -> tuple[str, ...]:
        """Add addresses or ranges; the new allowlist. A range with bits set after its prefix
        (``203.0.113.5/2``) is refused as a typo."""
        added = _networks(values)
        return self._change(
            account_id, lambda current: (*current, *(n for n in added if n not in current)), actor
        )

    def disallow(
        self, account_id: int, values: Sequence[str], actor: Actor = COMMAND_LINE
    ) -> tuple[str, ...]:
        """Remove addresses or ranges (exactly as listed); the new allowlist. An empty allowlist
        allows every address, so removing the last entry opens the account: the caller says so."""
        removed = set(_networks(values))

        def without(current: tuple[str, ...]) -> tuple[str, ...]:
            missing = sorted(removed - set(current))
            if missing:
                raise ValueError(f"not in account {account_id}'s allowlist: {', '.join(missing)}")
            return tuple(n for n in current if n not in removed)

        return self._change(account_id, without, actor)

    def _change(
        self, account_id: int, change: Callable[[tuple[str, ...]], tuple[str, ...]], actor: Actor
    ) -> tuple[str, ...]:
        with write_transaction(self._engine) as conn:
            before = accounts.get(conn, account_id).allowlist
            updated = change(before)
            now = self._clock.now()
            accounts.set_allowlist(conn, account_id, updated, now)
            details = {"before": list(before), "after": list(updated)}
            activity.record(conn, account_id, "allowlist_changed", now, actor, details=details)
        self._account_changed(account_id)
        return updated


def _networks(values: Sequence[str]) -> tuple[str, ...]:
    """Each value as a network, in the order given, once each; ValueError names a bad one."""
    return tuple(dict.fromkeys(str(parse_network(v)) for v in values))
