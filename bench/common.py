"""Shared helpers for the benchmarks in ``bench/``: running, timing, memory, tables.

Measurement (the same for every tool, so ratios taken in one run are comparable):

* **wall**: ``time.perf_counter()`` around ``Popen`` .. ``os.wait4`` of the child.
* **peak RSS (largest process)**: ``ru_maxrss`` from ``os.wait4``. For a process tree this is
  the maximum over the child and the descendants it waited for, *not* a sum: for a
  multi-process tool it is the largest single process.
* **peak tree memory (sampled)**: a thread samples every ``SAMPLE_INTERVAL`` s the sum over
  the whole process tree (child + all descendants, found through ``/proc/*/stat`` parent
  links) of the *PSS* (``/proc/PID/smaps_rollup``; shared pages divided among sharers, so
  forked workers are not double-counted), falling back to RSS where PSS is unreadable. It
  can miss a peak shorter than the interval; one sample costs a few ms of one core.

Progress goes to stderr; tables to stdout.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parent.parent
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

import rules  # noqa: E402  (the project's one definition of the formats)
from tests.support.processes import tree_pss_kb  # noqa: E402  (one way to walk a process tree)


def as_installed() -> None:
    """Run the project as ``pip install`` leaves it: bytecode compiled and used.

    Some machines set ``PYTHONDONTWRITEBYTECODE``; then every start of the scanner
    compiles its modules from source again (~70 ms here), which no installed user pays.
    """
    import compileall

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    for package in ("rules", "scanner", "partner_endpoint"):
        compileall.compile_dir(REPO_ROOT / package, quiet=1)


as_installed()

BENCH_ROOT = Path("/tmp/soundpiece-bench")
RULES_DIR = REPO_ROOT / "bench" / "kingfisher_rules"
SAMPLE_INTERVAL = 0.1


def log(*parts: object) -> None:
    print("[bench]", *parts, file=sys.stderr, flush=True)


# ---------------------------------------------------------------- tokens


def mint(fmt: rules.TokenFormat, rng: random.Random) -> bytes:
    """A valid token of ``fmt`` drawn from ``rng``, so the corpora are the same on every machine.

    ``fmt.mint()`` draws from :mod:`secrets` and cannot be seeded; here the random part comes from
    ``rng`` and the prefix and checksum from ``rules``; ``fmt.is_valid`` checks the result.
    """
    body = bytes(rng.choice(rules.BASE62) for _ in range(32))
    token = fmt.prefix.encode() + body + rules.checksum(body)
    assert fmt.is_valid(token), token
    return token


# ---------------------------------------------------------------- locating the tools


def venv_bin(name: str) -> Path | None:
    """``name`` next to the running interpreter (the project venv), else on PATH."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return candidate
    found = shutil.which(name)
    return Path(found) if found else None


def soundpiece_scan() -> Path | None:
    return venv_bin("soundpiece-scan")


def kingfisher_binary() -> Path | None:
    """The native kingfisher binary shipped in ``kingfisher-bin``.

    ``.venv/bin/kingfisher`` is a Python launcher that execs this binary; calling the binary
    directly keeps a Python start-up (and its memory) out of kingfisher's figures.
    """
    try:
        import kingfisher  # type: ignore[import-not-found]

        binary = Path(kingfisher.__file__).parent / "bin" / "kingfisher"
        if binary.exists():
            return binary
    except ImportError:
        pass
    return venv_bin("kingfisher")


def kingfisher_rule_flags() -> list[str]:
    """Flags every kingfisher run shares: only our two checksum rules, never the network."""
    return [
        "--rules-path",
        str(RULES_DIR),
        "--load-builtins=false",
        "-n",
        "--no-update-check",
        "--format",
        "json",
        "-q",
    ]


# ---------------------------------------------------------------- measuring one run


@dataclass
class Run:
    wall: float
    maxrss_kb: int
    tree_peak_kb: int
    returncode: int
    stdout_path: Path | None
    stderr_tail: str


class _TreeSampler(threading.Thread):
    def __init__(self, pid: int) -> None:
        super().__init__(daemon=True)
        self.pid = pid
        self.peak_kb = 0
        self.stop = threading.Event()

    def run(self) -> None:
        while not self.stop.is_set():
            total = tree_pss_kb(self.pid)
            self.peak_kb = max(self.peak_kb, total)
            self.stop.wait(SAMPLE_INTERVAL)


GNU_TIME = "/usr/bin/time" if os.access("/usr/bin/time", os.X_OK) else None
"""GNU time, to read a command's own peak RSS. ``os.wait4``'s ``ru_maxrss`` also counts the memory of
the process that spawned it before ``exec`` (this script, after building a corpus: ~180 MB), so
every tool looked as large as the benchmark. GNU time forks from its own 2 MB."""


def _time_peak_kb(path: str) -> int:
    try:
        return int(Path(path).read_text().split()[-1])
    except (OSError, ValueError, IndexError):
        return 0


def measure(
    cmd: Sequence[str | os.PathLike[str]],
    *,
    stdout_path: Path | None = None,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    timeout: float = 3600.0,
    sample_tree: bool = True,
) -> Run:
    """Run ``cmd`` once; stdout to ``stdout_path`` (or /dev/null), stderr kept (tail)."""
    out = open(stdout_path, "wb") if stdout_path else open(os.devnull, "wb")  # noqa: SIM115
    err = tempfile.TemporaryFile()  # noqa: SIM115
    peak_file = tempfile.NamedTemporaryFile(suffix=".maxrss")  # noqa: SIM115
    argv = [str(c) for c in cmd]
    if GNU_TIME:
        argv = [GNU_TIME, "-f", "%M", "-o", peak_file.name, *argv]
    try:
        start = time.perf_counter()
        proc = subprocess.Popen(argv, stdout=out, stderr=err, cwd=cwd, env=env)
        sampler = _TreeSampler(proc.pid) if sample_tree else None
        if sampler:
            sampler.start()
        killer = threading.Timer(timeout, proc.kill)
        killer.start()
        _, status, usage = os.wait4(proc.pid, 0)  # blocks: no polling noise in the parent
        killer.cancel()
        wall = time.perf_counter() - start
        proc.returncode = os.waitstatus_to_exitcode(status)
        if sampler:
            sampler.stop.set()
            sampler.join()
        err.seek(0)
        tail = err.read()[-4000:].decode("utf-8", "replace")
        maxrss_kb = _time_peak_kb(peak_file.name) if GNU_TIME else usage.ru_maxrss
    finally:
        out.close()
        err.close()
        peak_file.close()
    return Run(
        wall=wall,
        maxrss_kb=maxrss_kb,
        tree_peak_kb=sampler.peak_kb if sampler else 0,
        returncode=proc.returncode,
        stdout_path=stdout_path,
        stderr_tail=tail,
    )


# ---------------------------------------------------------------- interleaved rounds


@dataclass
class Tool:
    """One contender. ``ok_codes``: exit codes that mean "ran fine" for this tool."""

    name: str
    cmd: list[str]
    ok_codes: tuple[int, ...] = (0, 1)
    stdout_name: str | None = None
    cwd: Path | None = None
    runs: list[Run] = field(default_factory=list)
    error: str | None = None
    stderr_tail: str = ""

    @property
    def last_stdout(self) -> Path | None:
        return self.runs[-1].stdout_path if self.runs else None


def run_interleaved(tools: list[Tool], runs: int, out_dir: Path, warmup: int = 1) -> None:
    """``warmup`` + ``runs`` rounds; each round runs every tool once, in order.

    A tool whose warm-up fails (missing, crash, unexpected exit code) is dropped with its error
    recorded, and the others go on. Warm-up runs are not recorded.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    warn_if_busy("before the runs")
    for round_no in range(warmup + runs):
        label = "warm-up" if round_no < warmup else f"run {round_no - warmup + 1}/{runs}"
        for tool in tools:
            if tool.error:
                continue
            stdout_path = out_dir / tool.stdout_name if tool.stdout_name else None
            log(f"{label}: {tool.name} ...")
            try:
                run = measure(tool.cmd, stdout_path=stdout_path, cwd=tool.cwd)
            except OSError as exc:
                tool.error = f"could not start: {exc}"
                log(f"  SKIP {tool.name}: {tool.error}")
                continue
            if run.returncode not in tool.ok_codes:
                lines = [line for line in run.stderr_tail.splitlines() if line.strip()]
                tool.error = f"exit code {run.returncode}: {lines[-1].strip() if lines else '(no stderr)'}"
                tool.stderr_tail = run.stderr_tail
                log(f"  SKIP {tool.name}: {tool.error}")
                continue
            log(
                f"  {run.wall:.3f} s, maxrss {run.maxrss_kb / 1024:.0f} MB,"
                f" tree {run.tree_peak_kb / 1024:.0f} MB"
            )
            if round_no >= warmup:
                tool.runs.append(run)
    warn_if_busy("after the runs")


def warn_if_busy(when: str) -> float:
    """Log the 1-minute load average; warn when other work competes for the cores."""
    load = os.getloadavg()[0]
    cores = os.cpu_count() or 1
    if load > 0.5 * cores:
        log(
            f"WARNING: load average {load:.2f} on {cores} cores {when}: other processes compete, "
            "absolute times are noisy; compare the ratios (and the min/min ratios)"
        )
    else:
        log(f"load average {load:.2f} on {cores} cores {when}")
    return load


def summary(tool: Tool) -> dict[str, object]:
    if not tool.runs:
        return {
            "name": tool.name,
            "cmd": tool.cmd,
            "error": tool.error or "no runs",
            "stderr": tool.stderr_tail,
        }
    walls = [r.wall for r in tool.runs]
    return {
        "name": tool.name,
        "cmd": tool.cmd,
        "runs": len(walls),
        "walls": walls,
        "median_wall": statistics.median(walls),
        "min_wall": min(walls),
        "peak_rss_largest_process_mb": max(r.maxrss_kb for r in tool.runs) / 1024,
        "peak_tree_pss_mb": max(r.tree_peak_kb for r in tool.runs) / 1024,
        "error": tool.error,
    }


# ---------------------------------------------------------------- start-up latency


def startup_median(cmd: Sequence[str], runs: int, cwd: Path | None = None) -> dict[str, object]:
    """Median wall of ``cmd`` over ``runs`` runs (hyperfine when installed, else our own loop)."""
    argv = [str(c) for c in cmd]
    hyperfine = shutil.which("hyperfine")
    if hyperfine:
        with tempfile.NamedTemporaryFile(suffix=".json") as export:
            shell_cmd = " ".join(_shell_quote(a) for a in argv)
            proc = subprocess.run(
                [
                    hyperfine,
                    "-N",
                    "--warmup",
                    "3",
                    "--runs",
                    str(runs),
                    "-i",
                    "--export-json",
                    export.name,
                    "--style",
                    "none",
                    shell_cmd,
                ],
                cwd=cwd,
                capture_output=True,
                text=True,
                check=False,
            )
            if proc.returncode == 0:
                result = json.load(open(export.name))["results"][0]  # noqa: SIM115
                codes = sorted(set(result.get("exit_codes") or []))
                return {
                    "method": "hyperfine -N",
                    "median": result["median"],
                    "min": result["min"],
                    "runs": runs,
                    "exit_codes": codes,
                }
            log(f"hyperfine failed ({proc.stderr.strip()[-300:]}); timing with our own loop")
    walls, codes = [], set()
    for _ in range(3):
        subprocess.run(argv, cwd=cwd, capture_output=True, check=False)
    for _ in range(runs):
        run = measure(argv, cwd=cwd, sample_tree=False)
        walls.append(run.wall)
        codes.add(run.returncode)
    return {
        "method": "perf_counter loop",
        "median": statistics.median(walls),
        "min": min(walls),
        "runs": runs,
        "exit_codes": sorted(codes),
    }


def _shell_quote(arg: str) -> str:
    import shlex

    return shlex.quote(arg)


# ---------------------------------------------------------------- formatting


def fmt_s(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    return f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.2f} s"


def fmt_mb(mb: float | None) -> str:
    return "—" if mb is None else f"{mb:.0f} MB"


def ratio(ours: float | None, other: float | None) -> float | None:
    if ours is None or other is None or other == 0:
        return None
    return ours / other


def fmt_ratio(value: float | None) -> str:
    return "—" if value is None else f"{value:.2f}×"


def markdown_table(headers: Sequence[str], rows: Sequence[Sequence[object]]) -> str:
    cells = [[str(c) for c in headers]] + [[str(c) for c in row] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]
    lines = []
    for n, row in enumerate(cells):
        lines.append("| " + " | ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)) + " |")
        if n == 0:
            lines.append("|" + "|".join("-" * (w + 2) for w in widths) + "|")
    return "\n".join(lines)


def verdict(value: float | None, target: float) -> str:
    if value is None:
        return "not measured"
    return "PASS" if value <= target else "FAIL"


def write_json(path: Path, data: object) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(data, indent=2, default=str) + "\n")
    tmp.replace(path)
    log(f"wrote {path}")


def git(
    *args: str, cwd: Path | None = None, env: dict[str, str] | None = None, input: bytes | None = None
) -> str:
    """Run git, return stdout (stripped); raise with stderr on failure."""
    proc = subprocess.run(["git", *args], cwd=cwd, env=env, input=input, capture_output=True, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode("utf-8", "replace").strip()


TOOL_COLUMNS = [
    "tool",
    "median wall",
    "min",
    "peak RSS (largest process / tree PSS)",
    "findings",
    "ratio (medians)",
]
"""The columns of :func:`tool_row`."""


def tool_row(name: str, entry: dict, ours: dict, found: str, peer_label: str) -> list[str]:
    """One table row: times, memory, what was found, and the ratio against ours."""
    rel = (
        "1.00× (ours)"
        if name == "soundpiece-scan"
        else f"ours/{peer_label} = "
        + fmt_ratio(ratio(ours.get("median_wall"), entry["median_wall"]))
        + " (min/min "
        + fmt_ratio(ratio(ours.get("min_wall"), entry["min_wall"]))
        + ")"
    )
    return [
        name,
        fmt_s(entry["median_wall"]),
        fmt_s(entry["min_wall"]),
        fmt_mb(entry["peak_rss_largest_process_mb"]) + " / " + fmt_mb(entry["peak_tree_pss_mb"]),
        found,
        rel,
    ]


def judged_summary(tool: Tool, check: Callable[[Tool], dict]) -> dict:
    """The tool's timings, plus ``check``'s verdict on its last output (or why it could not parse)."""
    entry = summary(tool)
    if tool.runs and tool.last_stdout:
        try:
            entry["correctness"] = check(tool)
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            entry["correctness"] = {"error": f"could not parse output: {exc!r}"}
    return entry
