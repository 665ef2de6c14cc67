"""Traffic charts drawn on the server: SVG bars and their text equivalent, for pages under a strict CSP.

No script and no inline style: a bar is a ``<rect>`` whose size is in its attributes and whose look
is the stylesheet's (classes). The SVG stretches to its box (``preserveAspectRatio="none"``, one
unit a bar, 100 units high), so its labels are HTML beside it, readable at any width. Accepted
requests are solid dark bars; refused ones are stacked on top, light with a dark outline: they
differ in lightness and shape, not only in colour. Every bar has a ``<title>`` (a tooltip for
pointer users); the SVG as a whole is one image with a summary for screen readers, and the
numbers are a table under it. Pure functions.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from markupsafe import Markup, escape

from partner_endpoint.dashboard.present import counted
from partner_endpoint.services.traffic import HOUR_MINUTES, WEEK_HOURS, KeyTraffic
from partner_endpoint.store.traffic import Point

Slot = Literal["hour", "minute"]
SLOTS: tuple[Slot, ...] = ("hour", "minute")

HEIGHT = 100
"""The plot's height in SVG units: a bar's height is its share of the axis' top, in percent."""
_BAR = 0.7
"""A bar's width in a slot of one unit (the rest is the gap between bars)."""
_STEPS = {"hour": timedelta(hours=1), "minute": timedelta(minutes=1)}


@dataclass(frozen=True, slots=True)
class Series:
    """A chart's bars: one per ``slot`` from ``start``, gaps filled with zeros."""

    title: str
    slot: Slot
    start: datetime
    bars: tuple[Point, ...]
    ticks: tuple[str, ...]
    """The labels under the chart, evenly spaced from its left edge to its right."""

    @property
    def requests(self) -> int:
        return sum(b.requests for b in self.bars)

    @property
    def refused(self) -> int:
        return sum(b.refused for b in self.bars)

    @property
    def peak(self) -> Point | None:
        """The bar with the most requests, accepted and refused (the first of equals); None if all are 0."""
        best = max(self.bars, key=lambda b: b.requests + b.refused, default=None)
        return best if best is not None and best.requests + best.refused > 0 else None

    @property
    def top(self) -> int:
        """The value at the top of the axis: the least of 2, 4, 6, 8, 10, 20, 40… at or above every bar."""
        return axis_top(max((b.requests + b.refused for b in self.bars), default=0))


def axis_top(peak: int) -> int:
    scale = 1
    while True:
        for step in (2, 4, 6, 8, 10):
            if step * scale >= peak:
                return step * scale
        scale *= 10


def series(
    points: Iterable[Point], start: datetime, slot: Slot, count: int, title: str, ticks: Sequence[str]
) -> Series:
    """``count`` bars of one ``slot`` each from ``start``: the points added into their slot, zeros
    where there is none; points outside the span are not drawn."""
    step = _STEPS[slot]
    requests = [0] * count
    refused = [0] * count
    for point in points:
        index = (point.at - start) // step
        if 0 <= index < count:
            requests[index] += point.requests
            refused[index] += point.refused
    bars = tuple(Point(start + i * step, requests[i], refused[i]) for i in range(count))
    return Series(title, slot, start, bars, tuple(ticks))


_DAYS = tuple(f"{d} day{'' if d == 1 else 's'} ago" for d in range(7, 0, -1))


def week(traffic: KeyTraffic) -> Series:
    """Requests per hour over the week (:data:`WEEK_HOURS` bars, the current hour last)."""
    title = "Requests per hour, last 7 days"
    return series(traffic.hours, traffic.week_from, "hour", WEEK_HOURS, title, (*_DAYS, "now"))


def last_hour(traffic: KeyTraffic) -> Series:
    """Requests per minute over the last hour (:data:`HOUR_MINUTES` bars, the current minute last)."""
    title = "Requests per minute, last hour"
    ticks = ("60 min ago", "45 min ago", "30 min ago", "15 min ago", "now")
    return series(traffic.minutes, traffic.hour_from, "minute", HOUR_MINUTES, title, ticks)


# --- words ----------------------------------------------------------------------------------------


_WEEKDAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def _clock(at: datetime) -> str:
    return f"{at.hour:02d}:{at.minute:02d}"


def when(series: Series, bar: Point) -> str:
    """The bar's slot in words: ``Thu 26 Nov, 11:00`` (hours), ``11:42`` (minutes); UTC."""
    return _when(series.slot, bar.at)


@functools.lru_cache(maxsize=1024)
def _when(slot: Slot, at: datetime) -> str:
    """Formatted by hand, and remembered: strftime's names follow the process' locale, and the week
    chart names each of its 168 hours twice per page (strftime was a quarter of the key page's
    time); the same hours come back on every page for an hour."""
    if slot == "minute":
        return _clock(at)
    return f"{_WEEKDAYS[at.weekday()]} {at.day} {_MONTHS[at.month - 1]}, {_clock(at)}"


@functools.lru_cache(maxsize=1024)
def _span(slot: Slot, at: datetime) -> str:
    """A bar's slot as its tooltip starts: ``Thu 26 Nov, 11:00–12:00 UTC``."""
    if slot == "minute":
        return f"{_when(slot, at)} UTC"
    return f"{_when(slot, at)}–{_clock(at + _STEPS['hour'])} UTC"


def _tooltip(series: Series, bar: Point) -> str:
    """Digits, month and day names and fixed words: nothing HTML would read as markup."""
    refused = f", {bar.refused:,} refused" if bar.refused else ""
    return f"{_span(series.slot, bar.at)}: {counted(bar.requests, 'request')}{refused}"


def summary(series: Series) -> str:
    """What the chart shows, in a sentence: its totals and its busiest bar."""
    if series.peak is None:
        return f"{series.title}: no requests."
    peak = series.peak
    busiest = "busiest hour" if series.slot == "hour" else "busiest minute"
    refused = f", {peak.refused:,} refused" if peak.refused else ""
    return (
        f"{series.title}: {counted(series.requests, 'request')}, {series.refused:,} refused. "
        f"The {busiest}, {when(series, peak)} UTC, had {counted(peak.requests, 'request')}{refused}."
    )


# --- drawing --------------------------------------------------------------------------------------


def _number(value: float) -> str:
    return f"{value:.3f}".rstrip("0").rstrip(".")


def heights(bar: Point, top: int) -> tuple[float, float]:
    """The accepted and refused parts of a bar, in SVG units: their share of the axis' ``top``."""
    return HEIGHT * bar.requests / top, HEIGHT * bar.refused / top


@functools.cache
def _slots(count: int) -> tuple[tuple[str, str], ...]:
    """Per bar of a chart of ``count``: its hover area and its bars' x and width, the same on every page."""
    return tuple(
        (
            f'<rect class="hit" x="{i}" y="0" width="1" height="{HEIGHT}"/>',
            f'x="{_number(i + (1 - _BAR) / 2)}" width="{_BAR}"',
        )
        for i in range(count)
    )


def svg(series: Series) -> Markup:
    """The bars as one image (``role="img"``, its summary as the label), a tooltip on each."""
    count = len(series.bars)
    parts = [
        f'<svg class="chart-bars" viewBox="0 0 {count} {HEIGHT}" preserveAspectRatio="none" '
        f'role="img" aria-label="{escape(summary(series))}" focusable="false">',
        f'<line class="grid" x1="0" y1="0" x2="{count}" y2="0"/>',
        f'<line class="grid" x1="0" y1="{HEIGHT // 2}" x2="{count}" y2="{HEIGHT // 2}"/>',
    ]
    intervals = len(series.ticks) - 1
    for tick in range(1, intervals):
        x = _number(count * tick / intervals)
        parts.append(f'<line class="tick" x1="{x}" y1="0" x2="{x}" y2="{HEIGHT}"/>')
    top = series.top
    for bar, (hit, x) in zip(series.bars, _slots(count), strict=True):
        accepted, refused = heights(bar, top)
        parts.append(f'<g class="bar"><title>{_tooltip(series, bar)}</title>{hit}')
        if bar.requests:
            parts.append(
                f'<rect class="accepted" {x} y="{_number(HEIGHT - accepted)}" height="{_number(accepted)}"/>'
            )
        if bar.refused:
            y = HEIGHT - accepted - refused
            parts.append(f'<rect class="refused" {x} y="{_number(y)}" height="{_number(refused)}"/>')
        parts.append("</g>")
    parts.append(f'<line class="axis" x1="0" y1="{HEIGHT}" x2="{count}" y2="{HEIGHT}"/></svg>')
    return Markup("".join(parts))


def table(series: Series, table_id: str) -> Markup:
    """The numbers behind the chart: a row for each bar with requests, then the totals."""
    slot = "Hour" if series.slot == "hour" else "Minute"
    rows = [
        f'<tr><th scope="row">{escape(when(series, b))}</th>'
        f'<td class="num">{b.requests:,}</td><td class="num">{b.refused:,}</td></tr>'
        for b in series.bars
        if b.requests or b.refused
    ]
    body = "".join(rows) or f'<tr><td colspan="3" class="muted">No requests in any {slot.lower()}.</td></tr>'
    return Markup(
        f'<table class="numbers" id="{escape(table_id)}"><caption>{escape(series.title)}, in UTC. '
        f"{slot}s not listed had no requests.</caption>"
        f'<thead><tr><th scope="col">{slot} (UTC)</th><th scope="col" class="num">Requests</th>'
        f'<th scope="col" class="num">Refused</th></tr></thead>'
        f"<tbody>{body}</tbody>"
        f'<tfoot><tr><th scope="row">Total</th><td class="num">{series.requests:,}</td>'
        f'<td class="num">{series.refused:,}</td></tr></tfoot></table>'
    )


def chart(series: Series, chart_id: str) -> Markup:
    """The chart with its axes' labels, and its table in a ``<details>``: a figure for the page."""
    top = series.top
    ticks = "".join(f"<span>{escape(t)}</span>" for t in series.ticks)
    return Markup(
        f'<figure class="chart" aria-labelledby="{escape(chart_id)}-title">'
        f'<figcaption id="{escape(chart_id)}-title" class="chart-title">{escape(series.title)}</figcaption>'
        f'<div class="chart-frame"><div class="chart-y" aria-hidden="true">'
        f"<span>{top:,}</span><span>{top // 2:,}</span><span>0</span></div>"
        f"{svg(series)}</div>"
        f'<div class="chart-x ticks-{len(series.ticks)}" aria-hidden="true">{ticks}</div>'
        f'<details class="chart-data"><summary>Show the numbers'
        f'<span class="visually-hidden">: {escape(series.title)}</span></summary><div class="numbers-scroll" '
        f'tabindex="0" role="region" aria-label="{escape(series.title)}, as a table">'
        f"{table(series, f'{chart_id}-numbers')}</div></details></figure>"
    )
