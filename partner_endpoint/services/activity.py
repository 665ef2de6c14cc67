"""Each account's activity log, as the dashboard and the command line read it.

The entries are written by the other services, in the transactions of the changes they record
(:mod:`partner_endpoint.store.activity`); this service only reads them.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import Engine

from partner_endpoint.domain.paging import Pager, pager
from partner_endpoint.store import accounts, activity, api_keys
from partner_endpoint.store.activity import Entry
from partner_endpoint.store.api_keys import KeyName
from partner_endpoint.store.db import read_transaction


class ActivityService:
    def __init__(self, engine: Engine) -> None:
        self._engine = engine

    def page(self, account_id: int, page: int, size: int = 50) -> tuple[list[Entry], Pager]:
        """Newest first; past the last page, the last one."""
        with read_transaction(self._engine) as conn:
            entries, total = activity.page(conn, account_id, (max(page, 1) - 1) * size, size)
            shown = pager(total, page, size)
            if shown.page != page:
                entries, total = activity.page(conn, account_id, shown.offset, size)
        return entries, shown

    def key_names(self, account_id: int, entries: Sequence[Entry]) -> dict[int, KeyName]:
        """The keys the entries name (the account's own only), to show them by label."""
        key_ids = [e.key_id for e in entries if e.key_id is not None]
        key_ids += [int(e.details["replaces"]) for e in entries if isinstance(e.details.get("replaces"), int)]
        with read_transaction(self._engine) as conn:
            return api_keys.names(conn, account_id, key_ids)

    def since(self, moment: datetime | None, account_id: int | None = None) -> list[Entry]:
        """Oldest first (NotFound for an account that does not exist)."""
        with read_transaction(self._engine) as conn:
            if account_id is not None:
                accounts.get(conn, account_id)
            return activity.since(conn, moment, account_id)
