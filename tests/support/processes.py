"""Processes the tests start: free ports, waiting for a condition, and a process tree's memory.

Memory is measured over the whole tree (the child and every descendant, such as the scanner's
forked pool workers or uvicorn's workers), from ``/proc``:

* **PSS** (``smaps_rollup``) summed over the tree at each sample: shared pages are divided
  among the processes that share them, so forked workers are not counted twice. A sample can
  miss a peak shorter than the interval.
* **VmHWM** of each process: its own high-water mark, which no sample can miss. Not
  ``ru_maxrss``: Linux carries that across ``exec`` from the process that spawned the child, so
  a child of a large pytest worker would report the worker's peak.

A tree's peak is the larger of the two; both are lower bounds of the true peak.

The same samples read each process's ``rchar`` (``/proc/PID/io``: bytes that ``read`` and its kin
returned), so a test can bound what a process read, whatever the time it took.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

PAGE_KB = os.sysconf("SC_PAGE_SIZE") // 1024
HANG_GUARD = 120.0
"""Seconds after which a process a test started counts as hung. A guard, never a speed limit: speed
is measured in bench/; this only has to hold on a loaded 2-core machine."""


def unprivileged(argv: list[str]) -> list[str]:
    """``argv`` run so that file modes bind it, even when the tests run as root.

    As root, under ``setpriv`` without the two capabilities that override file permissions
    (``CAP_DAC_OVERRIDE``, ``CAP_DAC_READ_SEARCH``): the process keeps uid 0, so it can still reach
    an interpreter under ``/root`` and git trusts the repositories the tests made, but a file or
    directory of mode 0 is refused to it as to anyone. As any other user, ``argv`` unchanged.
    """
    if os.geteuid() != 0:
        return argv
    setpriv = shutil.which("setpriv")
    assert setpriv, "running as root, the permission tests need setpriv (util-linux) to drop privileges"
    return [setpriv, "--bounding-set=-dac_override,-dac_read_search", "--", *argv]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def wait_for(
    predicate: Callable[[], object], timeout: float, interval: float = 0.05, what: str = "condition"
) -> None:
    """Poll ``predicate`` until it is true; a hang guard of ``timeout`` seconds, not a speed limit."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(interval)


# --- process trees ------------------------------------------------------------------------------


def _parents() -> dict[int, list[int]]:
    """Every process's children, from the parent field of ``/proc/PID/stat`` (no kernel option needed)."""
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # The command name may hold spaces and parentheses: the fields start after the last ')'.
        fields = stat[stat.rfind(b")") + 2 :].split()
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def process_tree(root: int) -> list[int]:
    """``root`` and all its descendants alive now."""
    children = _parents()
    pids, stack = [], [root]
    while stack:
        pid = stack.pop()
        pids.append(pid)
        stack.extend(children.get(pid, ()))
    return pids


def _proc_number(pid: int, name: str, key: bytes) -> int:
    """The number after ``key`` on its line of ``/proc/PID/<name>``; 0 once the process is gone."""
    try:
        with open(f"/proc/{pid}/{name}", "rb") as handle:
            for line in handle:
                if line.startswith(key):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        pass
    return 0


def status_kb(pid: int, field_name: bytes) -> int:
    """A ``kB`` field of ``/proc/PID/status`` (``VmHWM``, ``VmRSS``)."""
    return _proc_number(pid, "status", field_name + b":")


def pss_kb(pid: int) -> int:
    """Proportional set size; resident size where ``smaps_rollup`` is unreadable."""
    if pss := _proc_number(pid, "smaps_rollup", b"Pss:"):
        return pss
    try:
        with open(f"/proc/{pid}/statm", "rb") as handle:
            return int(handle.read().split()[1]) * PAGE_KB
    except (OSError, ValueError, IndexError):
        return 0


def read_chars(pid: int) -> int:
    """Bytes the process has read so far (``rchar`` of ``/proc/PID/io``)."""
    return _proc_number(pid, "io", b"rchar:")


def tree_pss_kb(root: int) -> int:
    return sum(pss_kb(pid) for pid in process_tree(root))


# --- peak memory of a tree ----------------------------------------------------------------------


REAPER = (
    "import os, sys\n"
    "pid = os.fork()\n"
    "if pid == 0:\n"
    "    os.execvp(sys.argv[2], sys.argv[2:])\n"
    "_, status, usage = os.wait4(pid, 0)\n"
    "with open(sys.argv[1], 'w') as out:\n"
    "    out.write(str(usage.ru_maxrss))\n"
    "sys.exit(os.waitstatus_to_exitcode(status))\n"
)
"""Runs a command and writes its ``ru_maxrss``: the largest RSS of the command and of every process it
reaped (its pool workers), however briefly they lived, where sampling can miss them. Not measured
from the test process itself: a child's ``ru_maxrss`` also counts what its spawner held before
``exec`` (a pytest worker: 100+ MB); this small interpreter forks it instead."""


def reaped_peak(argv: list, peak_file: Path) -> list:
    """``argv`` run through :data:`REAPER`; pass the same ``peak_file`` to :func:`wait_measuring`."""
    return [sys.executable, "-S", "-c", REAPER, str(peak_file), *argv]


@dataclass
class TreePeak:
    """What sampling a process tree saw."""

    reaped_max_kb: int = 0
    """The largest RSS of any process in the tree, from ``wait4`` (:func:`reaped_peak`): never missed."""
    total_pss_kb: int = 0
    """The largest PSS sum over the tree at one sample."""
    high_water_kb: dict[int, int] = field(default_factory=dict)
    """Each process's own VmHWM, as last read before it exited."""
    read_bytes: dict[int, int] = field(default_factory=dict)
    """Each process's ``rchar``, as last read before it exited (reads after the last sample are missed)."""

    @property
    def processes(self) -> int:
        return len(self.high_water_kb)

    @property
    def mib(self) -> float:
        largest = max(self.reaped_max_kb, *self.high_water_kb.values(), 0)
        return max(self.total_pss_kb, largest) / 1024

    def sample(self, root: int) -> None:
        total = 0
        for pid in process_tree(root):
            total += pss_kb(pid)
            if hwm := status_kb(pid, b"VmHWM"):
                self.high_water_kb[pid] = max(self.high_water_kb.get(pid, 0), hwm)
            if rchar := read_chars(pid):
                self.read_bytes[pid] = max(self.read_bytes.get(pid, 0), rchar)
        self.total_pss_kb = max(self.total_pss_kb, total)


def wait_measuring(proc: subprocess.Popen, timeout: float, peak_file: Path | None = None) -> TreePeak | None:
    """Wait for ``proc`` while sampling its tree; None on timeout (the tree is killed).

    With ``peak_file`` (the command was started through :func:`reaped_peak`), the peak also holds
    the exact largest RSS of every process in the tree. ``timeout`` is a hang guard, not a speed limit.
    """
    peak = TreePeak()
    deadline = time.monotonic() + timeout
    while proc.poll() is None:
        peak.sample(proc.pid)
        if time.monotonic() > deadline:
            for pid in reversed(process_tree(proc.pid)):
                with contextlib.suppress(ProcessLookupError):
                    os.kill(pid, 9)
            proc.wait()
            return None
        time.sleep(0.01)
    if peak_file is not None:
        peak.reaped_max_kb = int(peak_file.read_text())
    return peak
