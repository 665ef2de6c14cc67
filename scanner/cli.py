"""The ``soundpiece-scan`` command line: parse, run a source through the engine, filter, report.

Exit codes: 0 nothing found, 1 credentials found, 2 an error (with a one-line
message on stderr). Imports are deferred to where they are needed: this runs
on every commit.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Sequence
from typing import TextIO

from scanner import __version__
from scanner.errors import ScanError, UsageError

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2


def build_parser() -> argparse.ArgumentParser:
    from scanner.report import FORMATS

    parser = argparse.ArgumentParser(
        prog="soundpiece-scan",
        description="Find checksum-valid Soundpiece credentials (spk_ API keys, whsec_ signing secrets).",
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to scan; - for stdin")
    parser.add_argument(
        "--git",
        nargs="?",
        const=".",
        metavar="REPO",
        help="scan the whole history of a repository (default: the current one)",
    )
    parser.add_argument("--range", metavar="A..B", help="with --git: only what the commits in this range add")
    parser.add_argument(
        "--staged", action="store_true", help="only lines the next commit would add (pre-commit)"
    )
    parser.add_argument("--format", "-f", choices=FORMATS, default="text", help="report format")
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument("--jobs", "-j", type=int, default=os.cpu_count() or 1, metavar="N")
    parser.add_argument(
        "--show-secrets", action="store_true", help="print whole credentials (never done otherwise)"
    )
    parser.add_argument("--no-progress", action="store_true", help="never show the progress line")
    parser.add_argument("--baseline", metavar="FILE", help="ignore credentials listed in this baseline")
    parser.add_argument(
        "--write-baseline", metavar="FILE", help="record every current finding as accepted, then exit 0"
    )
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths")
    parser.add_argument(
        "--no-config", action="store_true", help="ignore pyproject.toml/.soundpiece-scan.toml"
    )
    parser.add_argument("--list-rules", action="store_true", help="print the token formats and exit")
    parser.add_argument("--version", action="version", version=f"soundpiece-scan {__version__}")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list_rules:
            return _list_rules(args.format, sys.stdout)
        return _scan(args)
    except KeyboardInterrupt:
        print("soundpiece-scan: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        _silence_stdout()
        return EXIT_ERROR
    except Exception as exc:
        message = _expected_error(exc)
        if message is None:
            raise
        print(f"soundpiece-scan: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _scan(args: argparse.Namespace) -> int:
    from scanner.engine import Engine
    from scanner.filters import drop_suppressed
    from scanner.filters.baseline import load_baseline, write_baseline

    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    config = _load_config(args)
    baseline_path = args.baseline or config.baseline
    baseline = load_baseline(baseline_path) if baseline_path and not args.write_baseline else frozenset()

    started = time.perf_counter()
    engine = Engine()
    progress = _progress_line(args)
    if args.git is not None or args.staged or args.range:
        findings, stats = _scan_git(args, engine, progress)
        findings = _drop_excluded(findings, (*config.exclude, *args.exclude))
    else:
        findings, stats = _scan_paths(args, config, engine, progress)
    if progress is not None:
        progress.close()
    stats.seconds = time.perf_counter() - started

    if args.write_baseline:
        write_baseline(args.write_baseline, findings)
        count = len({f.secret_sha256 for f in findings})
        _warn(f"baseline with {count} credentials written to {args.write_baseline}")
        return EXIT_CLEAN
    findings, stats.findings_suppressed = drop_suppressed(findings, baseline)
    findings.sort(key=lambda f: (f.location.commit or "", f.location.path, f.match.line, f.match.column))
    _write_report(args, findings, stats)
    return EXIT_FOUND if findings else EXIT_CLEAN


def _scan_paths(args, config, engine, progress):
    from scanner.filters.exclude import PathExcluder
    from scanner.findings import Finding, Location
    from scanner.sources import files
    from scanner.sources.stdin import STDIN_PATH, stdin_reader
    from scanner.stats import ScanStats
    from scanner.workers import scan_roots

    names = args.paths or ["."]
    roots = files.resolve_roots([p for p in names if p != "-"])
    globs = (*config.exclude, *args.exclude)
    excluder = PathExcluder(globs) if globs else None
    skip = frozenset(os.fsencode(p) for p in (args.output, args.baseline, args.write_baseline) if p)
    findings: list = []
    stats = ScanStats()
    if "-" in names:
        matches, size = engine.scan(stdin_reader())
        stats.files += 1
        stats.bytes += size
        location = Location(path=STDIN_PATH)
        findings += [Finding(m, location) for m in matches]

    walker = files.Walker(excluder, skip_files=files.file_identities(skip))
    update = None if progress is None else lambda n, b: progress.update(n, b)
    found, file_stats = scan_roots(roots, walker, engine, jobs=args.jobs, warn=_warn, progress=update)
    findings += found
    stats.merge(file_stats)
    return findings, stats


def _scan_git(args, engine, progress):
    from scanner.sources.git.repo import open_repo

    if args.paths:
        raise UsageError("--git and --staged take no PATH arguments (use --git REPO)")
    if args.staged and (args.git is not None or args.range):
        raise UsageError("--staged cannot be combined with --git or --range")
    repo = open_repo(args.git or ".")
    if args.staged:
        from scanner.changes import scan_staged

        return scan_staged(repo, engine)
    if args.range:
        from scanner.changes import scan_range

        return scan_range(repo, engine, args.range)
    from scanner.history import scan_history

    update = None
    if progress is not None:
        progress.unit = "objects"

        def update(done: int, total: int, done_bytes: int, total_bytes: int) -> None:
            progress.total = total
            progress.update(done, done_bytes, total_bytes)

    return scan_history(repo, engine, jobs=args.jobs, warn=_warn, progress=update)


def _drop_excluded(findings: list, globs: tuple[str, ...]) -> list:
    """--exclude and the configuration apply to paths in history and in the index too."""
    if not globs:
        return findings
    from scanner.filters.exclude import PathExcluder

    excluder = PathExcluder(globs)
    return [f for f in findings if not excluder.excludes(f.location.path.decode("utf-8", "surrogateescape"))]


def _load_config(args: argparse.Namespace):
    from pathlib import Path

    from scanner.config import Config, load_config

    return Config() if args.no_config else load_config(Path.cwd())


def _progress_line(args: argparse.Namespace):
    if args.no_progress or not sys.stderr.isatty():
        return None
    from scanner.progress import ProgressLine

    return ProgressLine(sys.stderr)


def _write_report(args: argparse.Namespace, findings, stats) -> None:
    from scanner.report import write_report

    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="\n") as out:
            write_report(
                args.format,
                findings,
                stats,
                out,
                show_secrets=args.show_secrets,
                tool_version=__version__,
                scan_root=os.getcwd(),
            )
        return
    color = args.format == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if hasattr(sys.stdout, "reconfigure"):  # an ASCII stdout gets "\u2026" for "…", not a traceback
        sys.stdout.reconfigure(errors="backslashreplace")
    write_report(
        args.format,
        findings,
        stats,
        sys.stdout,
        show_secrets=args.show_secrets,
        color=color,
        tool_version=__version__,
        scan_root=os.getcwd(),
    )
    sys.stdout.flush()


def _list_rules(fmt: str, out: TextIO) -> int:
    import json

    from rules.github import partner_patterns

    patterns = partner_patterns()
    if fmt in ("json", "jsonl"):
        json.dump(patterns, out, indent=2)
        out.write("\n")
    else:
        for p in patterns:
            out.write(f"{p['name']}\t{p['regex']}\t{p['description']}\n")
    return EXIT_CLEAN


def _warn(message: str) -> None:
    # One write per line: the walk (feeder thread) and the workers' warnings may interleave.
    # On a terminal, first clear a progress line the warning would otherwise start inside.
    # A file name may hold a newline or an escape sequence: one warning stays one plain line.
    from scanner.report.text import printable

    clear = "\r\x1b[K" if sys.stderr.isatty() else ""
    sys.stderr.write(f"{clear}soundpiece-scan: warning: {printable(message)}\n")
    sys.stderr.flush()


def _expected_error(exc: Exception) -> str | None:
    """A one-line message for the errors a user can cause, None for bugs."""
    if isinstance(exc, ScanError):
        return str(exc)
    if isinstance(exc, OSError):
        name = exc.filename if isinstance(exc.filename, str) else None
        return f"{name + ': ' if name else ''}{exc.strerror or exc}"
    return None


def _silence_stdout() -> None:
    """After a closed pipe (``| head``), stop Python complaining at exit."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except OSError:
        pass
