"""Paging a list: which page is shown, and what it holds. Pure."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Pager:
    page: int
    """The page shown, 1-based, clamped to the pages there are (there is always one, even empty)."""
    size: int
    total: int

    @property
    def count(self) -> int:
        return max(1, -(-self.total // self.size))

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.size

    @property
    def first(self) -> int:
        """1-based position of the page's first item (0 when there is none)."""
        return self.offset + 1 if self.total else 0

    @property
    def last(self) -> int:
        return min(self.offset + self.size, self.total)


def pager(total: int, page: int, size: int) -> Pager:
    """Page ``page`` of ``total`` items, ``size`` a page, clamped to the pages there are."""
    last = Pager(1, size, total).count
    return Pager(min(max(1, page), last), size, total)
