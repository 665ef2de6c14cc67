"""The traffic charts (dashboard/charts.py) over any series: they draw, to scale, and say the same in words.

The oracle reads what was drawn (the SVG's rectangles, the axis' top label, the table's cells) and
compares it with sums made here from the points given, slot by slot: nothing of charts.py is reused
to compute what is expected.
"""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from partner_endpoint.dashboard import charts
from partner_endpoint.services.traffic import KeyTraffic
from partner_endpoint.store.traffic import Point

START = datetime(2026, 11, 19, 13, 0, tzinfo=UTC)
SLOT_SECONDS = {"hour": 3600, "minute": 60}
ROUNDING = 0.0005 + 1e-9
"""Heights are written with three decimals."""


def expected_slots(points: list[Point], slot: str, count: int) -> list[tuple[int, int]]:
    """(requests, refused) per slot, summed here from the points: those outside the span are dropped."""
    sums = [(0, 0)] * count
    for p in points:
        index = int((p.at - START).total_seconds() // SLOT_SECONDS[slot])
        if 0 <= index < count:
            n, r = sums[index]
            sums[index] = (n + p.requests, r + p.refused)
    return sums


def drawn(figure: str) -> ET.Element:
    """The chart's markup as a tree: it is well-formed XML (no void elements), so the oracle can walk it."""
    return ET.fromstring(str(figure))


def number(text: str | None) -> int:
    assert text is not None
    return int(text.replace(",", ""))


points_in_and_around = st.builds(
    Point,
    at=st.integers(min_value=-3 * 200 * 3600, max_value=3 * 200 * 3600).map(
        lambda s: START + timedelta(seconds=s)
    ),
    requests=st.integers(min_value=0, max_value=10**9),
    refused=st.integers(min_value=0, max_value=10**9),
)


@settings(max_examples=150, deadline=None)
@given(
    points=st.lists(points_in_and_around, max_size=40),
    slot=st.sampled_from(charts.SLOTS),
    count=st.integers(min_value=1, max_value=200),
)
def test_any_series_is_drawn_to_scale_and_told_in_a_table(
    points: list[Point], slot: charts.Slot, count: int
) -> None:
    series = charts.series(points, START, slot, count, "Requests", ("start", "middle", "end"))
    figure = drawn(charts.chart(series, "c"))
    expected = expected_slots(points, slot, count)

    # One bar per slot, each with a tooltip; heights never negative, never above the plot.
    svg = figure.find(".//svg")
    assert svg is not None and svg.get("role") == "img"
    bars = svg.findall("g[@class='bar']")
    assert len(bars) == count
    top = number(figure.findall(".//div[@class='chart-y']/span")[0].text)
    busiest = max((n + r for n, r in expected), default=0)
    assert top >= max(busiest, 1)
    for bar, (requests, refused) in zip(bars, expected, strict=True):
        # Tooltips are written without escaping: only digits, day and month names and fixed words.
        title = bar.find("title")
        assert title is not None and re.fullmatch(r"[A-Za-z0-9 ,:–]+", title.text or "")
        heights = {}
        for part in ("accepted", "refused"):
            rect = bar.find(f"rect[@class='{part}']")
            heights[part] = 0.0 if rect is None else float(rect.get("height", "nan"))
            assert heights[part] >= 0
        # Proportional: each part's height is its share of the axis' top.
        assert abs(heights["accepted"] - 100 * requests / top) <= ROUNDING
        assert abs(heights["refused"] - 100 * refused / top) <= ROUNDING
        assert heights["accepted"] + heights["refused"] <= 100 + 2 * ROUNDING
        # Zero draws nothing (a bar of no height would still be a shape to some renderers).
        assert (bar.find("rect[@class='accepted']") is not None) == (requests > 0)
        assert (bar.find("rect[@class='refused']") is not None) == (refused > 0)

    # The text equivalent: a row for each slot with requests, and the totals, equal to the series.
    table = figure.find(".//table[@id='c-numbers']")
    assert table is not None
    rows = [
        [cell.text or "" for cell in row]
        for row in table.findall("tbody/tr")
        if row.find("td[@colspan]") is None
    ]
    assert len(rows) == sum(1 for n, r in expected if n or r)
    assert sum(number(r[1]) for r in rows) == sum(n for n, _ in expected)
    assert sum(number(r[2]) for r in rows) == sum(r for _, r in expected)
    footer = table.find("tfoot/tr")
    assert footer is not None
    assert [number(c.text) for c in footer.findall("td")] == [
        sum(n for n, _ in expected),
        sum(r for _, r in expected),
    ]
    # And the image's label says the totals in words.
    label = svg.get("aria-label", "")
    total = sum(n for n, _ in expected)
    if busiest:
        assert f"{total:,} request" in label and f"{sum(r for _, r in expected):,} refused" in label
    else:
        assert label.endswith("no requests.")


@pytest.mark.parametrize(("make", "count"), [(charts.week, 168), (charts.last_hour, 60)])
def test_the_key_page_charts_have_a_bar_for_every_hour_and_minute(
    make: Callable[[KeyTraffic], charts.Series], count: int
) -> None:
    """Only slots with requests come from the store; the gaps are drawn as zeros."""
    now = START + timedelta(days=7)
    traffic = KeyTraffic(
        hours=[Point(START + timedelta(hours=3), 5, 1)],
        minutes=[Point(now - timedelta(minutes=2), 7, 0)],
        addresses=[],
        last_hour=7,
        week_from=START,
        hour_from=now - timedelta(minutes=59),
    )
    series = make(traffic)
    figure = drawn(charts.chart(series, "c"))
    bars = figure.findall(".//svg/g[@class='bar']")
    assert len(bars) == count
    drawn_bars = [i for i, b in enumerate(bars) if b.find("rect[@class='accepted']") is not None]
    assert drawn_bars == ([3] if count == 168 else [57])
    # The tooltips name each slot: hours by day and hour, minutes by the minute (UTC).
    if count == 168:
        assert bars[3].findtext("title") == "Thu 19 Nov, 16:00–17:00 UTC: 5 requests, 1 refused"
    else:
        assert bars[57].findtext("title") == "12:58 UTC: 7 requests"


def test_hours_are_named_by_weekday_day_and_hour() -> None:
    start = datetime(2026, 11, 15, 9, 0, tzinfo=UTC)  # a Sunday; no zero to strip from the day
    series = charts.series([Point(start, 1, 0)], start, "hour", 2, "Requests", ("a", "b"))
    assert charts.when(series, series.bars[0]) == "Sun 15 Nov, 09:00"
    assert charts.when(series, Point(datetime(2026, 12, 5, 0, 0, tzinfo=UTC), 0, 0)) == "Sat 5 Dec, 00:00"


def test_an_empty_series_draws_an_empty_chart() -> None:
    series = charts.series([], START, "minute", 60, "Requests per minute", ("a", "b"))
    figure = drawn(charts.chart(series, "c"))
    assert figure.find(".//svg[@aria-label='Requests per minute: no requests.']") is not None
    assert not figure.findall(".//rect[@class='accepted']")
    assert not figure.findall(".//rect[@class='refused']")
    assert [c.text for c in figure.findall(".//tfoot/tr/td")] == ["0", "0"]
