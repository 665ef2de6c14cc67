"""A small process pool for scans: forked workers, one task queue, live counters.

Threads cannot help: per-input work is Python bytecode under the GIL. Forked
workers inherit the compiled engine; each pulls tasks from one queue, so one
slow task never idles the other cores, and publishes (items, bytes) counters
that the parent turns into a progress line.
"""

from __future__ import annotations

import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, Generic, TypeVar

from scanner.stats import ScanStats

T = TypeVar("T")
R = TypeVar("R")
Warn = Callable[[str], None]
Progress = Callable[[int, int], None]
PROGRESS_INTERVAL = 0.25
"""Seconds between two progress reports."""
Handler = Callable[[T, ScanStats, Warn], list[R]]
"""Does one task; counts into the stats, warns through the callable, returns results."""
Finish = Callable[[ScanStats, Warn], None]
"""Called in each worker after its last task: ends what the handler kept from task to task."""


class Pool(Generic[T, R]):
    def __init__(self, handler: Handler[T, R], jobs: int, finish: Finish | None = None) -> None:
        self._handler = handler
        self._jobs = jobs
        self._finish = finish

    def run(
        self, tasks: Iterable[T], warn: Warn, progress: Progress | None = None
    ) -> tuple[list[R], ScanStats]:
        import multiprocessing  # deferred: small scans never start a pool

        ctx = (
            multiprocessing.get_context("fork")
            if sys.platform == "linux"
            else multiprocessing.get_context("spawn")
        )
        queue = ctx.SimpleQueue()
        results = ctx.SimpleQueue()
        counters = ctx.RawArray("q", 2 * self._jobs)
        workers = [
            ctx.Process(
                target=_work, args=(i, self._handler, self._finish, queue, results, counters), daemon=True
            )
            for i in range(self._jobs)
        ]
        for worker in workers:
            worker.start()
        # Feed from a thread while this one collects: a worker blocked on a full results
        # pipe (many warnings) would otherwise stop taking tasks while we wait to put one.
        failed: list[BaseException] = []

        def feed() -> None:
            try:
                for task in tasks:
                    queue.put(task)
            except BaseException as exc:  # the task source failed: stop the workers, re-raise below
                failed.append(exc)
            finally:
                for _ in workers:
                    queue.put(None)

        feeder = threading.Thread(target=feed, name="soundpiece-scan feeder", daemon=True)
        feeder.start()
        try:
            found = _collect(results, workers, counters, warn, progress)
            feeder.join()
            if failed:
                raise failed[0]
            return found
        finally:
            for worker in workers:
                if worker.is_alive():
                    worker.kill()
                worker.join()


class WorkerDied(OSError):
    """A worker process ended without its results (killed: out of memory, a signal)."""


Workers = list[Any]
"""multiprocessing's Process objects, of whichever start method."""


def _next_message(results: Any, workers: Workers) -> tuple[str, Any]:
    """The next message, or :class:`WorkerDied` when a worker is gone and nothing more can come."""
    from multiprocessing.connection import wait

    reader = getattr(results, "_reader", None)
    while reader is not None and results.empty():
        alive = [w.sentinel for w in workers if w.exitcode is None]
        wait([reader, *alive], timeout=1.0)
        if not results.empty():
            break
        dead = [w for w in workers if w.exitcode not in (None, 0)]
        if dead or not alive:
            code = dead[0].exitcode if dead else 0
            how = f"signal {-code}" if code < 0 else f"exit code {code}"
            raise WorkerDied(f"a worker process died ({how}), perhaps out of memory; try --jobs 1")
    message: tuple[str, Any] = results.get()
    return message


def _collect(
    results: Any, workers: Workers, counters: Any, warn: Warn, progress: Progress | None
) -> tuple[list[Any], ScanStats]:
    pending = len(workers)
    out: list[Any] = []
    stats = ScanStats()
    done = threading.Event()
    if progress is not None:

        def report() -> None:
            while not done.wait(PROGRESS_INTERVAL):
                progress(sum(counters[0::2]), sum(counters[1::2]))

        threading.Thread(target=report, daemon=True).start()
    try:
        while pending:
            kind, payload = _next_message(results, workers)
            if kind == "warn":
                warn(payload)
            elif kind == "done":
                found, worker_stats = payload
                out += found
                stats.merge(worker_stats)
                pending -= 1
            else:  # a worker crashed: say so rather than hang
                raise RuntimeError(payload)
    finally:
        done.set()
    return out, stats


def _work(
    index: int, handler: Handler[Any, Any], finish: Finish | None, queue: Any, results: Any, counters: Any
) -> None:
    stats = ScanStats()
    found: list[Any] = []

    def warn(message: str) -> None:
        results.put(("warn", message))

    try:
        while (task := queue.get()) is not None:
            found += handler(task, stats, warn)
            counters[2 * index] = stats.files
            counters[2 * index + 1] = stats.bytes
        if finish is not None:
            finish(stats, warn)
        results.put(("done", (found, stats)))
    except BaseException as exc:  # the parent raises it, with this traceback (a bug, to be reported)
        import traceback

        results.put(("error", f"worker {index} failed: {exc!r}\n{traceback.format_exc()}"))
