"""A child process's own peak memory, for tests that bound the scanner's memory.

Not ``ru_maxrss``: Linux carries a process's high-water mark across ``exec``
from the memory of the process that spawned it, so a child of a large pytest
worker reports that worker's peak. ``VmHWM`` belongs to the child's own
address space; :func:`wait_measuring` samples it until the child exits.
"""

from __future__ import annotations

import subprocess
import time


def high_water_mib(pid: int) -> float:
    """The process's own peak RSS (VmHWM), 0 once it is gone."""
    try:
        with open(f"/proc/{pid}/status", "rb") as status:
            for line in status:
                if line.startswith(b"VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def wait_measuring(proc: subprocess.Popen, timeout: float) -> float | None:
    """Wait for ``proc``, sampling its peak RSS; the peak in MiB, or None on timeout (killed)."""
    deadline = time.monotonic() + timeout
    peak = 0.0
    while proc.poll() is None:
        peak = max(peak, high_water_mib(proc.pid))
        if time.monotonic() > deadline:
            proc.kill()
            proc.wait()
            return None
        time.sleep(0.005)
    return peak
