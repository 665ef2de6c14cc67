"""Each account's activity log, as the dashboard and the command line read it.

The entries are written by the other services, in the transactions of the changes they record
(:mod:`partner_endpoint.store.activity`); this service only reads them.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Engine

from partner_endpoint.domain.paging import Pager, pager
from partner_endpoint.store import accounts, activity
from partner_endpoint.store.activity import Entry
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

    def since(self, moment: datetime | None, account_id: int | None = None) -> list[Entry]:
        """Oldest first (NotFound for an account that does not exist)."""
        with read_transaction(self._engine) as conn:
            if account_id is not None:
                accounts.get(conn, account_id)
            return activity.since(conn, moment, account_id)
