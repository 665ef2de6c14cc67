"""The ``soundpiece-scan`` command line: parse, name the sources, hand them to the runner.

Exit codes: 0 nothing found, 1 credentials found, 2 an error (with a one-line
message on stderr). A reader that leaves early (``| head``) ends the output
quietly and the exit code is still the verdict, as ripgrep keeps its match
status. Imports are deferred to where they are needed: this runs on every commit.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TextIO

from scanner.errors import ScanError, UsageError

if TYPE_CHECKING:
    from scanner.archive.limits import Limits
    from scanner.config import Config
    from scanner.filters.exclude import PathExcluder
    from scanner.findings import Finding
    from scanner.progress import ProgressLine
    from scanner.sources.base import Source
    from scanner.stats import ScanStats

EXIT_CLEAN, EXIT_FOUND, EXIT_ERROR = 0, 1, 2
EPILOG = """\
exit codes:
  0    no credentials found
  1    credentials found
  2    an error, with one line on stderr: bad arguments or configuration, a missing path,
       not a repository, a bad range (and a bug in the scanner, with its traceback)
  130  interrupted (Ctrl-C)

environment:
  SOUNDPIECE_API_URL  the API --verify asks (default https://api.soundpiece.co)
  NO_COLOR            set and not empty: no colour in the text report
  XDG_CACHE_HOME      the compiled patterns are kept in its soundpiece-scan/ (default ~/.cache)
  COLUMNS             the width of this help
  GIT_*               passed on to git (--git, --range, --staged), except GIT_DIR and GIT_WORK_TREE

configuration: .soundpiece-scan.toml, or [tool.soundpiece-scan] in pyproject.toml, in the current
directory (exclude, baseline, plain, carriers, and the bounds above); --no-config ignores it.
"""
UNNAMED = object()
"""``--git`` given without REPO: the repository is the one PATH, or the current directory."""


def build_parser() -> argparse.ArgumentParser:
    from scanner.archive.limits import OPTIONS, SIZES, Limits
    from scanner.report import FORMATS

    parser = argparse.ArgumentParser(
        prog="soundpiece-scan",
        description="Find checksum-valid Soundpiece credentials (spk_ API keys, whsec_ signing secrets).",
        epilog=EPILOG,
        formatter_class=_HelpFormatter,
    )
    parser.add_argument("paths", nargs="*", metavar="PATH", help="files or directories to scan; - for stdin")
    parser.add_argument(
        "--git",
        nargs="?",
        const=UNNAMED,
        metavar="REPO",
        help="scan the whole history of a repository (REPO, or the one PATH; default: the current one)",
    )
    parser.add_argument("--range", metavar="A..B", help="with --git: only what the commits in this range add")
    parser.add_argument(
        "--staged", action="store_true", help="only lines the next commit would add (pre-commit)"
    )
    parser.add_argument(
        "--format", "-f", choices=FORMATS, default="text", help="report format (default: text)"
    )
    parser.add_argument("--output", "-o", metavar="FILE", help="write the report to FILE instead of stdout")
    parser.add_argument(
        "--jobs",
        "-j",
        type=int,
        default=os.cpu_count() or 1,
        metavar="N",
        help="worker processes (default: every core)",
    )
    parser.add_argument(
        "--show-secrets", action="store_true", help="print whole credentials (never done otherwise)"
    )
    parser.add_argument("--no-progress", action="store_true", help="never show the progress line")
    parser.add_argument(
        "--verify",
        action="store_true",
        help="ask the Soundpiece API whether each API key found is live (one request per key; signing "
        "secrets are never sent)",
    )
    parser.add_argument("--only-live", action="store_true", help="report live keys only (implies --verify)")
    parser.add_argument(
        "--api-url",
        metavar="URL",
        help="the API --verify asks (default: $SOUNDPIECE_API_URL or https://api.soundpiece.co)",
    )
    parser.add_argument("--baseline", metavar="FILE", help="ignore credentials listed in this baseline")
    parser.add_argument(
        "--write-baseline", metavar="FILE", help="record every current finding as accepted, then exit 0"
    )
    parser.add_argument("--exclude", action="append", default=[], metavar="GLOB", help="skip matching paths")
    parser.add_argument(
        "--no-config", action="store_true", help="ignore pyproject.toml/.soundpiece-scan.toml"
    )
    parser.add_argument(
        "--plain",
        action="store_true",
        help="tokens as written only: decode and open nothing (no base64, UTF-16, hex, archives, mail or PDF;"
        " fastest); one carrier at a time: carriers = { hex = false } in the configuration",
    )
    bounds = parser.add_argument_group(
        "container bounds",
        "what one archive, message or PDF may cost (sizes in bytes, or with KiB, MiB, GiB)",
    )
    defaults = Limits()
    for option, name, meaning in OPTIONS:
        value = getattr(defaults, name)
        shown = f"{value >> 20}MiB" if name in SIZES else str(value)
        bounds.add_argument(
            f"--{option}", dest=f"limit_{name}", metavar="N", help=f"{meaning} (default: {shown})"
        )
    parser.add_argument("--list-rules", action="store_true", help="print the token formats and exit")
    parser.add_argument("--version", action=_Version, nargs=0, help="print the version and exit")
    return parser


class _Version(argparse.Action):
    """``--version``, read from the install's metadata only when asked (it costs every start otherwise)."""

    def __call__(self, parser: argparse.ArgumentParser, *_: object) -> None:
        from scanner import version

        print(f"soundpiece-scan {version()}")
        parser.exit()


class _HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """argparse's formatter, sized without importing shutil (and with it bz2 and lzma).

    argparse builds a formatter for every ``add_argument``, and its default one
    imports shutil to ask the terminal's width: 2-3 ms of every start, for help
    text that is almost never printed.
    """

    def __init__(self, prog: str) -> None:
        try:
            columns = int(os.environ.get("COLUMNS", "")) or os.get_terminal_size(sys.stdout.fileno()).columns
        except (ValueError, OSError):
            columns = 80
        super().__init__(prog, width=max(columns - 2, 40))


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.list_rules:
            _to_stdout(lambda: _list_rules(args.format, sys.stdout))
            return EXIT_CLEAN
        return _scan(args)
    except KeyboardInterrupt:
        print("soundpiece-scan: interrupted", file=sys.stderr)
        return 130
    except Exception as exc:
        message = _expected_error(exc)
        if message is None:
            _internal_error(exc)
        else:
            print(f"soundpiece-scan: error: {message}", file=sys.stderr)
        return EXIT_ERROR


def _scan(args: argparse.Namespace) -> int:
    if args.jobs < 1:
        raise UsageError("--jobs must be at least 1")
    config = _load_config(args)
    baseline_path = args.baseline or config.baseline
    baseline: frozenset[str] = frozenset()
    if baseline_path and not args.write_baseline:
        from scanner.filters.baseline import load_baseline  # json: imported only when there is one

        baseline = load_baseline(baseline_path)
    sources = _sources(args, config)
    progress = _progress_line(args)
    if args.write_baseline:
        return _write_baseline(args, config, sources, progress)
    from scanner.run import run

    def report(findings: list[Finding], stats: ScanStats) -> None:
        if progress is not None:
            progress.close()
        _write_report(args, findings, stats)

    update = None if progress is None else progress.show
    carriers, limits = _expansion(args, config)
    found = run(
        sources,
        report,
        jobs=args.jobs,
        warn=_warn,
        progress=update,
        baseline=baseline,
        judge=_judge(args),
        carriers=carriers,
        limits=limits,
    )
    return EXIT_FOUND if found else EXIT_CLEAN


def _judge(args: argparse.Namespace) -> Callable[[list[Finding]], list[Finding]] | None:
    """``--verify``: the step that asks the API about each key found; None (no network at all) without it."""
    if not (args.verify or args.only_live):
        return None
    from scanner.verify import DEFAULT_API_URL, VerifyOptions, checked_api_url, judge

    options = VerifyOptions(api_url=args.api_url or os.environ.get("SOUNDPIECE_API_URL") or DEFAULT_API_URL)
    checked_api_url(options.api_url)  # refuse a bad URL before scanning, not after
    return lambda findings: judge(findings, options, _warn, only_live=args.only_live)


def _expansion(args: argparse.Namespace, config: Config) -> tuple[frozenset[str], Limits]:
    """The carriers decoded and opened (none with --plain), and the bounds: the defaults, then the
    configuration, then the options."""
    from scanner.archive.limits import OPTIONS, Limits
    from scanner.carriers import CARRIERS
    from scanner.config import parse_limit

    values: dict[str, Any] = dict(config.limits)
    for option, name, _ in OPTIONS:
        given = getattr(args, f"limit_{name}")
        if given is not None:
            try:
                values[name] = parse_limit(name, given)
            except ValueError as exc:
                raise UsageError(f"--{option}: {exc}") from None
    carriers = frozenset() if args.plain or config.plain else frozenset(CARRIERS) - config.carriers_off
    return carriers, Limits(**values)


def _write_baseline(
    args: argparse.Namespace, config: Config, sources: list[Source], progress: ProgressLine | None
) -> int:
    """Every current finding, inline markers included, accepted: nothing is reported."""
    from scanner.filters.baseline import write_baseline
    from scanner.run import engine_for, scan

    engine, limits = engine_for(*_expansion(args, config))
    update = None if progress is None else progress.show
    findings, _ = scan(sources, engine, jobs=args.jobs, warn=_warn, progress=update, limits=limits)
    if progress is not None:
        progress.close()
    write_baseline(args.write_baseline, findings)
    count = len({f.secret_sha256 for f in findings})
    _warn(f"baseline with {count} credentials written to {args.write_baseline}")
    return EXIT_CLEAN


def _sources(args: argparse.Namespace, config: Config) -> list[Source]:
    """The sources the arguments name: files and stdin, or one of git's."""
    from scanner.filters.exclude import PathExcluder

    globs = (*config.exclude, *args.exclude)
    excluder = PathExcluder(globs) if globs else None
    if args.git is None and not args.staged and not args.range:
        return _path_sources(args, excluder)
    from scanner.sources.git.repo import open_repo

    if args.staged and (args.git is not None or args.range):
        raise UsageError("--staged cannot be combined with --git or --range")
    if args.staged and args.paths:
        raise UsageError("--staged takes no PATH arguments (it scans the repository it runs in)")
    named = args.git if isinstance(args.git, str) else None
    if args.paths:  # `--git --format json REPO`: a path after --git is the repository
        if named is not None or len(args.paths) > 1:
            raise UsageError("--git scans one repository: name it once, as --git REPO or as the one PATH")
        named = args.paths[0]
    repo = open_repo(named or ".")
    if args.staged or args.range:
        from scanner.sources.git.changes import ChangesSource

        if args.staged:
            return [ChangesSource.staged(repo, excluder)]
        return [ChangesSource.range(repo, args.range, excluder)]
    from scanner.sources.git.history import HistorySource

    return [HistorySource(repo, jobs=args.jobs, excluder=excluder)]


def _path_sources(args: argparse.Namespace, excluder: PathExcluder | None) -> list[Source]:
    from scanner.sources import walk
    from scanner.sources.files import FileSource

    names = args.paths or ["."]
    roots = walk.resolve_roots([p for p in names if p != "-"])
    skip = frozenset(os.fsencode(p) for p in (args.output, args.baseline, args.write_baseline) if p)
    files = FileSource(roots, walk.Walker(excluder, skip_files=walk.file_identities(skip)))
    if "-" not in names:
        return [files]
    from scanner.sources.stdin import StdinSource

    return [StdinSource(), files]


def _load_config(args: argparse.Namespace) -> Config:
    from scanner.config import Config, load_config

    return Config() if args.no_config else load_config(os.getcwd())


def _progress_line(args: argparse.Namespace) -> ProgressLine | None:
    if args.no_progress or not sys.stderr.isatty():
        return None
    from scanner.progress import ProgressLine

    return ProgressLine(sys.stderr)


def _write_report(args: argparse.Namespace, findings: list[Finding], stats: ScanStats) -> None:
    from scanner.report import write_report

    options = {"show_secrets": args.show_secrets, "scan_root": os.getcwd()}
    if args.output:
        with open(args.output, "w", encoding="utf-8", newline="\n") as out:
            write_report(args.format, findings, stats, out, **options)
        return
    color = args.format == "text" and sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if hasattr(sys.stdout, "reconfigure"):  # an ASCII stdout gets "\u2026" for "…", not a traceback
        sys.stdout.reconfigure(errors="backslashreplace")
    _to_stdout(lambda: write_report(args.format, findings, stats, sys.stdout, color=color, **options))


def _to_stdout(write: Callable[[], None]) -> None:
    """Run ``write`` and flush; a reader that left (``| head``) ends the output, quietly."""
    try:
        write()
        sys.stdout.flush()
    except BrokenPipeError:
        _silence(sys.stdout)


def _list_rules(fmt: str, out: TextIO) -> None:
    import json

    from rules.github import partner_patterns

    patterns = partner_patterns()
    if fmt in ("json", "jsonl"):
        json.dump(patterns, out, indent=2)
        out.write("\n")
    else:  # one line per type: name, regular expression, a freshly minted example, description
        for p in patterns:
            out.write(f"{p['name']}\t{p['regex']}\t{p['example']}\t{p['description']}\n")


def _warn(message: str) -> None:
    # One write per line: the walk (feeder thread) and the workers' warnings may interleave.
    # On a terminal, first clear a progress line the warning would otherwise start inside.
    # A file name may hold a newline or an escape sequence: one warning stays one plain line.
    from scanner.report.text import printable

    clear = "\r\x1b[K" if sys.stderr.isatty() else ""
    try:
        sys.stderr.write(f"{clear}soundpiece-scan: warning: {printable(message)}\n")
        sys.stderr.flush()
    except BrokenPipeError:  # `2>&1 | head`: no one reads warnings now, but the verdict still counts
        _silence(sys.stderr)


def _expected_error(exc: Exception) -> str | None:
    """A one-line message for the errors a user can cause, None for bugs."""
    if isinstance(exc, ScanError):
        return str(exc)
    if isinstance(exc, OSError):
        name = exc.filename if isinstance(exc.filename, str) else None
        return f"{name + ': ' if name else ''}{exc.strerror or exc}"
    return None


def _internal_error(exc: Exception) -> None:
    """A bug: its traceback to report, then one line saying so. Exit code 2, like any error: never 1
    ("found"), which Python's own crash would give, nor 0 (a scan cut short is no clean scan)."""
    import traceback

    traceback.print_exception(exc, file=sys.stderr)
    what = f"{type(exc).__name__}: {exc}".splitlines()[0]
    print(
        f"soundpiece-scan: error: internal error ({what}): a bug in soundpiece-scan, not a problem with"
        " what it scanned; please report it with the traceback above",
        file=sys.stderr,
    )


def _silence(stream: TextIO) -> None:
    """After a closed pipe (``| head``), send the rest to /dev/null: no complaint at exit either."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, stream.fileno())
        os.close(devnull)
    except OSError:
        pass
