#!/usr/bin/env python
"""One benchmark script, two revisions, side by side: interleaved rounds, medians, B/A ratios.

Why: a behaviour-preserving change must keep its benchmark figures "within noise" of the commit
before it. On a shared, noisy machine figures taken at different times don't compare, so both
revisions are measured in one session, rounds interleaved (A, B, A, B, ...) so that a change in
the machine's load falls on both, and the table gives each side's median with its min-max, not a
single run.

Each revision is checked out once, detached, under ``/tmp/soundpiece-bench/ab/<commit>``, and the
benchmark runs *from that tree*: that revision's copy of the script, cwd the tree, and
``PYTHONPATH=<tree>``, which comes before the shared venv's editable install (a ``.pth`` naming
the main checkout). The servers a benchmark starts (``.venv/bin/soundpiece-partner``) inherit
``PYTHONPATH`` and so import the same tree. Both are checked, not assumed: before the rounds, the
imports of the interpreter and of the console script (``PYTHONVERBOSE``) must all come from the
tree; and every run prints, from inside the benchmark's process, where ``partner_endpoint`` came
from, which must be the tree too.

The script gets ``--json FILE`` appended, unless ``--results`` names the file it writes by itself
(``dashboard_render.py``: ``/tmp/soundpiece-bench/results-dashboard.json``). Every numeric leaf of
that JSON is a metric (``alerts_1_token_max.p50_ms``). Each run's JSON, stdout and stderr, and a
summary, are kept under ``/tmp/soundpiece-bench/ab/runs/<time>-<script>/``.

Usage:
  .venv/bin/python bench/ab.py cf09cc2 0fe8835 --rounds 3 -- bench/endpoint_load.py --seconds 5
  .venv/bin/python bench/ab.py cf09cc2 0fe8835 --results /tmp/soundpiece-bench/results-dashboard.json \\
      -- bench/dashboard_render.py --requests 200
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

AB_ROOT = Path("/tmp/soundpiece-bench/ab")
REPO = Path(__file__).resolve().parent.parent
PYTHON = Path(sys.executable)
CONSOLE_SCRIPT = PYTHON.parent / "soundpiece-partner"
PACKAGES = ("rules", "scanner", "partner_endpoint", "tests", "bench")
MARK = "[ab] partner_endpoint imported from "
LAUNCHER = f"""
import os, runpy, sys
script = sys.argv[1]
sys.argv = sys.argv[1:]
sys.path.insert(0, os.path.dirname(os.path.abspath(script)))
try:
    runpy.run_path(script, run_name="__main__")
finally:
    module = sys.modules.get("partner_endpoint")
    print({MARK!r} + str(getattr(module, "__file__", None)), file=sys.stderr)
"""
"""Runs the script as ``python script`` would, then says which ``partner_endpoint`` it used."""


@dataclass
class Side:
    """One revision: its label (A/B), commit, tree, and what its runs gave."""

    label: str
    revision: str
    commit: str
    tree: Path
    runs: dict[int, dict[str, float]] = field(default_factory=dict)
    """Figures by round."""
    failures: list[str] = field(default_factory=list)
    loads: list[float] = field(default_factory=list)


def git(*args: str, cwd: Path = REPO) -> str:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True).stdout.strip()


def checkout(label: str, revision: str) -> Side:
    """A detached worktree of ``revision`` under AB_ROOT, made once and reused, bytecode compiled."""
    commit = git("rev-parse", "--verify", f"{revision}^{{commit}}")
    tree = AB_ROOT / commit[:12]
    if not (tree / ".git").exists():
        git("worktree", "add", "--detach", "--force", str(tree), commit)
    if git("rev-parse", "HEAD", cwd=tree) != commit or git("status", "--porcelain", "-uno", cwd=tree):
        raise SystemExit(f"{tree} is not a clean checkout of {commit}: remove it (git worktree remove)")
    packages = [str(tree / p) for p in PACKAGES if (tree / p).is_dir()]
    subprocess.run([str(PYTHON), "-m", "compileall", "-q", *packages], env=environment(tree), check=True)
    return Side(label, revision, commit, tree)


def environment(tree: Path) -> dict[str, str]:
    """Ours, with the tree alone on PYTHONPATH; bytecode written and used, as an install runs."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
    env["PYTHONPATH"] = str(tree)
    return env


def check_imports(side: Side) -> None:
    """Refuse to run unless the interpreter and the console script both import the tree's code."""
    probe = "import partner_endpoint, tests.support; print(partner_endpoint.__file__)"
    found = [run_in([str(PYTHON), "-c", probe], side.tree).stdout.strip()]
    verbose = run_in([str(CONSOLE_SCRIPT), "--help"], side.tree, PYTHONVERBOSE="1").stderr
    loaded = sorted(set(re.findall(r"(/\S+/partner_endpoint/\S+\.py)\b", verbose)))
    if not loaded:
        raise SystemExit(f"{side.label}: {CONSOLE_SCRIPT.name} --help imported no partner_endpoint module")
    found += loaded
    outside = [path for path in found if not path.startswith(f"{side.tree}/")]
    if outside:
        raise SystemExit(f"{side.label} ({side.commit[:12]}) imports from outside {side.tree}: {outside}")
    log(f"{side.label} = {side.revision} ({side.commit[:12]}): python imports {found[0]}")
    log(f"{side.label}: {CONSOLE_SCRIPT.name} imports {len(loaded)} modules, all from {side.tree}")


def run_in(command: list[str], tree: Path, **extra: str) -> subprocess.CompletedProcess[str]:
    env = environment(tree) | extra
    return subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True, timeout=120)


def run_once(side: Side, command: list[str], results: Path | None, out: Path, index: int) -> None:
    """One run of the benchmark from the side's tree; its numeric figures go to ``side.runs``."""
    name = f"{side.label}-{index}"
    target = results or out / f"{name}.json"
    extra = [] if results else ["--json", str(target)]
    side.loads.append(os.getloadavg()[0])
    started = time.time()
    with (out / f"{name}.stdout").open("w") as stdout, (out / f"{name}.stderr").open("w") as stderr:
        proc = subprocess.run(
            [str(PYTHON), "-c", LAUNCHER, *command, *extra],
            cwd=side.tree,
            env=environment(side.tree),
            stdout=stdout,
            stderr=stderr,
            check=False,
        )
    errors = (out / f"{name}.stderr").read_text()
    used = next((line.removeprefix(MARK) for line in errors.splitlines() if line.startswith(MARK)), "?")
    tail = " | ".join(errors.strip().splitlines()[-3:])
    failure = None
    if proc.returncode != 0:
        failure = f"round {index}: exit {proc.returncode}: {tail}"
    elif not used.startswith(f"{side.tree}/"):
        raise SystemExit(f"{name}: the benchmark imported partner_endpoint from {used}, not {side.tree}")
    elif not target.exists() or target.stat().st_mtime < started:
        failure = f"round {index}: no new results in {target}"
    else:
        if results:
            shutil.copy(results, out / f"{name}.json")
        side.runs[index] = numbers(json.loads(target.read_text()))
    if failure:
        side.failures.append(failure)
    state = f"FAILED ({failure})" if failure else "ok"
    log(f"{name}: {state} in {time.time() - started:.0f} s, load {side.loads[-1]:.2f}, code from {used}")


def numbers(data: Any, prefix: str = "") -> dict[str, float]:
    """The numeric leaves of a JSON document, by dotted path (booleans are not figures)."""
    if isinstance(data, dict):
        found: dict[str, float] = {}
        for key, value in data.items():
            found |= numbers(value, f"{prefix}{key}.")
        return found
    if isinstance(data, int | float) and not isinstance(data, bool):
        return {prefix.removesuffix("."): float(data)}
    return {}


def figure(value: float) -> str:
    return f"{value:.4g}" if abs(value) < 1000 else f"{value:,.0f}"


def proportion(value: float) -> str:
    return f"{value:.2f}"


def summary(values: list[float], show: Callable[[float], str] = figure) -> str:
    if not values:
        return "—"
    return f"{show(statistics.median(values))} ({show(min(values))}–{show(max(values))})"


def table(a: Side, b: Side, match: str | None) -> str:
    """Markdown: per metric, each side's median (min–max), the ratio of the medians, B/A, and the
    ratios of the rounds' pairs (A then B, moments apart, so they share the machine's load).

    Metrics equal in every run of both sides (sizes, counts of errors) are listed after it.
    """
    runs = [*a.runs.values(), *b.runs.values()]
    metrics = list(dict.fromkeys(key for run in runs for key in run))
    if match:
        metrics = [m for m in metrics if re.search(match, m)]
    rows = [
        f"| metric | A {a.commit[:7]} median (min–max) | B {b.commit[:7]} median (min–max) "
        "| B/A of medians | B/A round by round: median (min–max) |",
        "|---|---|---|---|---|",
    ]
    rounds = [(a.runs[i], b.runs[i]) for i in a.runs if i in b.runs]
    constant = []
    for metric in metrics:
        values = [[run[metric] for run in side.runs.values() if metric in run] for side in (a, b)]
        if all(values) and len(set(values[0] + values[1])) == 1:
            constant.append(f"{metric} = {figure(values[0][0])}")
            continue
        medians = [statistics.median(v) if v else None for v in values]
        ratio = proportion(medians[1] / medians[0]) if medians[0] and medians[1] is not None else "—"
        paired = [rb[metric] / ra[metric] for ra, rb in rounds if ra.get(metric) and metric in rb]
        cells = [metric, summary(values[0]), summary(values[1]), ratio, summary(paired, proportion)]
        rows.append(f"| {' | '.join(cells)} |")
    if constant:
        rows.append(f"\nThe same in every run of both: {'; '.join(constant)}.")
    return "\n".join(rows)


def log(message: str) -> None:
    print(f"[ab] {message}", file=sys.stderr, flush=True)


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    command = argv[split + 1 :]
    formatter = argparse.RawDescriptionHelpFormatter
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=formatter)
    parser.add_argument("a", help="revision A (before)")
    parser.add_argument("b", help="revision B (after)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per revision, interleaved: A, B, A, B")
    parser.add_argument("--results", type=Path, help="the JSON file the script writes (no --json given)")
    parser.add_argument("--match", help="only metrics whose name matches this regular expression")
    args = parser.parse_args(argv[:split])
    if not command:
        parser.error("no benchmark command after --")

    a, b = checkout("A", args.a), checkout("B", args.b)
    for side in (a, b):
        check_imports(side)
    out = AB_ROOT / "runs" / f"{time.strftime('%Y%m%d-%H%M%S')}-{Path(command[0]).stem}"
    out.mkdir(parents=True)
    log(f"{' '.join(command)}: {args.rounds} rounds, output in {out}")
    for index in range(1, args.rounds + 1):
        for side in (a, b):
            run_once(side, command, args.results, out, index)

    print(f"`{' '.join(command)}`, {args.rounds} interleaved rounds; A = {args.a}, B = {args.b}\n")
    print(table(a, b, args.match))
    print()
    for side in (a, b):
        loads = f"{min(side.loads):.2f}–{max(side.loads):.2f}"
        print(f"- {side.label}: {len(side.runs)}/{args.rounds} runs ok, 1-min load average at start {loads}")
        for failure in side.failures:
            print(f"  - {failure}")
    record = {
        "command": command,
        "sides": [
            {k: str(v) if isinstance(v, Path) else v for k, v in vars(side).items()} for side in (a, b)
        ],
    }
    (out / "summary.json").write_text(json.dumps(record, indent=2) + "\n")
    return 0 if a.runs and b.runs else 1


if __name__ == "__main__":
    sys.exit(main())
