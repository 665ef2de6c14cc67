"""One runner for every source: units of work -> the engine, here or on every core -> filters -> report.

Small scans never pay for a pool: worker processes start only once a source has
listed more units than one process handles in a blink (``Source.pool_after``);
until then, and for sources that never pool (stdin, a diff), units are scanned
here, as they are listed. See :mod:`scanner.sources.base` for the protocol.
"""

from __future__ import annotations

import dataclasses
import itertools
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING

from scanner import pool
from scanner.archive.limits import Limits
from scanner.archive.sniff import sniff
from scanner.carriers import CARRIERS, OPENED, carrier_of
from scanner.engine import Engine
from scanner.engine.engine import DECODERS
from scanner.filters import drop_suppressed
from scanner.findings import Finding
from scanner.pool import Pool
from scanner.sources.base import Hit, Input, Opened, Source, Warn
from scanner.stats import ScanStats

if TYPE_CHECKING:
    from scanner.archive.expander import Expander

Progress = Callable[[Source, int, int], None]
"""Called with the source being scanned, its inputs and bytes read so far."""
Report = Callable[[list[Finding], ScanStats], None]
ALL_CARRIERS = frozenset(CARRIERS)


def run(
    sources: Sequence[Source],
    report: Report,
    *,
    jobs: int,
    warn: Warn,
    progress: Progress | None = None,
    baseline: frozenset[str] = frozenset(),
    carriers: frozenset[str] = ALL_CARRIERS,
    limits: Limits | None = None,
    judge: Callable[[list[Finding]], list[Finding]] | None = None,
) -> list[Finding]:
    """Scan every source, drop what inline markers and the baseline excuse, judge, sort, report.

    ``carriers``: what is decoded and opened (:mod:`scanner.carriers`; none: tokens as written
    only). ``judge`` (``--verify``) sees the findings that are left and returns those to report,
    with its verdicts. Returns the findings reported.
    """
    started = time.perf_counter()
    engine, limits = engine_for(carriers, limits)
    findings, stats = scan(sources, engine, jobs=jobs, warn=warn, progress=progress, limits=limits)
    stats.seconds = time.perf_counter() - started
    findings, stats.findings_suppressed = drop_suppressed(findings, baseline)
    if judge is not None:
        findings = judge(findings)
    findings.sort(key=sort_key)
    report(findings, stats)
    return findings


def engine_for(carriers: frozenset[str], limits: Limits | None) -> tuple[Engine, Limits | None]:
    """The engine (decoding the carriers it decodes) and the bounds of the containers it opens
    (None: none opened)."""
    engine = Engine(decoders=carriers & DECODERS)
    opened = carriers & OPENED
    limits = limits or Limits()
    if not opened or limits.depth == 0:
        return engine, None
    return engine, dataclasses.replace(limits, opened=opened)


def sort_key(finding: Finding) -> tuple[str, bytes, tuple[bytes, ...], int, int, str]:
    loc, match = finding.location, finding.match
    return (loc.commit or "", loc.path, loc.inner, match.line, match.column, match.encoding or "")


def scan(
    sources: Iterable[Source],
    engine: Engine,
    *,
    jobs: int = 1,
    warn: Warn,
    progress: Progress | None = None,
    limits: Limits | None = None,
) -> tuple[list[Finding], ScanStats]:
    """Every finding of every source, in no particular order, and the counters.

    ``limits``: open archives within these bounds (None: never open archives).
    """
    findings: list[Finding] = []
    stats = ScanStats()
    for source in sources:
        try:
            hits, source_stats = _scan_units(source, engine, limits, jobs, warn, progress)
            findings += source.findings(hits, source_stats, warn)
        finally:
            source.close()
        stats.merge(source_stats)
    return findings, stats


def _scan_units(
    source: Source, engine: Engine, limits: Limits | None, jobs: int, warn: Warn, progress: Progress | None
) -> tuple[list[Hit], ScanStats]:
    stats = ScanStats()
    units = iter(source.units(stats, warn))
    first: list[object] = []
    if jobs > 1 and source.pool_after is not None:
        for unit in units:
            first.append(unit)
            if len(first) > source.pool_after:
                update = None if progress is None else lambda n, b: progress(source, n, b)
                workers = Pool(UnitScanner(source, engine, limits), jobs, source.finish)
                hits, pooled = workers.run(itertools.chain(first, units), warn, update)
                stats.merge(pooled)
                return hits, stats
    return _scan_here(source, engine, limits, itertools.chain(first, units), stats, warn, progress), stats


def _scan_here(
    source: Source,
    engine: Engine,
    limits: Limits | None,
    units: Iterable[object],
    stats: ScanStats,
    warn: Warn,
    progress: Progress | None,
) -> list[Hit]:
    """Scan in this process, reporting progress like the pool does (a few large inputs take a while)."""
    tick = None
    if progress is not None:
        last = time.monotonic()

        def tick(counted: ScanStats) -> None:
            nonlocal last
            if (now := time.monotonic()) - last >= pool.PROGRESS_INTERVAL:
                last = now
                progress(source, counted.files, counted.bytes)

    scanner = UnitScanner(source, engine, limits, tick)
    hits: list[Hit] = []
    for unit in units:
        hits += scanner(unit, stats, warn)
    source.finish(stats, warn)
    return hits


class UnitScanner:
    """Scans the inputs of one unit of a source (in a worker process, or here).

    Every input of every source passes through here, so this is where archives are
    opened: after an input's raw bytes are scanned (nothing found today is lost), an
    input whose first bytes are an archive's is opened into members, scanned the same
    way (:class:`~scanner.archive.expander.Expander`); their hits name the member.
    """

    def __init__(
        self,
        source: Source,
        engine: Engine,
        limits: Limits | None = None,
        tick: Callable[[ScanStats], None] | None = None,
    ) -> None:
        self._source = source
        self._engine = engine
        self._limits = limits
        self._expander: Expander | None = (
            None  # made when the first archive turns up (its imports are not free)
        )
        self._tick = tick

    def __call__(self, unit: object, stats: ScanStats, warn: Warn) -> list[Hit]:
        engine = self._engine
        scan = engine.scan
        short_read_is_end = self._source.short_read_is_end
        expanding = self._limits is not None
        tick = self._tick
        hits: list[Hit] = []
        inputs = self._source.open(unit, stats, warn)
        item = next(inputs, None)
        while item is not None:
            key, readinto, reopen = item
            try:
                matches, size = scan(readinto, short_read_is_end=short_read_is_end, reopen=reopen)
            except Exception as exc:  # the source decides: skip the input, end the unit, or re-raise
                item = _thrown(inputs, exc)
                continue
            stats.files += 1
            stats.bytes += size
            if expanding and (kind := self._opened(engine.head(size), size)) is not None:
                label = self._source.label(key)
                opened = self._expand().expand(kind, size, reopen, matches, label, stats, warn)
                hits += [(key, inner, found) for inner, found in opened]
            elif matches:
                hits.append((key, (), matches))
            if tick is not None:
                tick(stats)
            item = next(inputs, None)
        return hits

    def _opened(self, head: bytes | bytearray, size: int) -> str | None:
        """The kind of container an input is, when its carrier is opened."""
        kind = sniff(head, size)
        if kind is None or self._limits is None or carrier_of(kind) not in self._limits.opened:
            return None
        return kind

    def _expand(self) -> Expander:
        if self._expander is None:
            from scanner.archive.expander import Expander

            assert self._limits is not None
            self._expander = Expander(self._engine, self._limits)
        return self._expander


def _thrown(inputs: Opened, exc: Exception) -> Input | None:
    """Throw ``exc`` into the source's generator at its ``yield``; its next input, if any."""
    try:
        return inputs.throw(exc)
    except StopIteration:
        return None
