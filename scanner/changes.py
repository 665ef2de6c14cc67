"""Scanning only what a change adds: the staged index, or the commits of ``A..B``.

Flow: git writes the diff -> the added lines of each file are scanned as one
input -> matches are placed back on their line in the new file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable

from scanner.engine import Engine
from scanner.findings import Finding, Location
from scanner.sources.git.diff import AddedLines, parse_patch
from scanner.sources.git.repo import GitError, Repo
from scanner.stats import ScanStats

_DIFF_OPTIONS = (
    "-U0",
    "--no-color",
    "--no-renames",
    "--text",
    "--no-ext-diff",
    "--no-textconv",
    # Explicit prefixes: the user's diff.noprefix / diff.mnemonicPrefix must not change the paths.
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


def scan_staged(repo: Repo, engine: Engine) -> tuple[list[Finding], ScanStats]:
    """Credentials on lines the next commit would add (the index against HEAD)."""
    if repo.bare:
        raise GitError("--staged needs a work tree, and this repository is bare")
    patch = repo.run("diff", "--cached", *_DIFF_OPTIONS, "--")
    return scan_added(parse_patch(patch), engine)


def scan_range(repo: Repo, engine: Engine, revision_range: str) -> tuple[list[Finding], ScanStats]:
    """Credentials that the commits of ``revision_range`` add (a push or a pull request)."""
    if revision_range.startswith("-"):
        raise GitError(f"bad range {revision_range!r}")
    try:
        repo.run("rev-list", "--count", revision_range, "--")
    except GitError as exc:
        raise GitError(f"bad range {revision_range!r}: {exc}") from None
    patch = repo.run(
        "log",
        "--reverse",
        "--format=%x01%H%x00%an%x00%ae%x00%aI",
        "-p",
        "--cc",
        "--root",  # a root commit's files too, whatever the user's log.showRoot
        *_DIFF_OPTIONS,
        revision_range,
        "--",
    )
    return scan_added(parse_patch(patch), engine)


def scan_added(changes: Iterable[AddedLines], engine: Engine) -> tuple[list[Finding], ScanStats]:
    findings: list[Finding] = []
    stats = ScanStats()
    for change in changes:
        data = b"\n".join(change.lines)
        stats.files += 1
        stats.bytes += len(data)
        matches = engine.scan_bytes(data)
        if not matches:
            continue
        commit = change.commit
        location = Location(
            path=change.path,
            commit=commit[0] if commit else None,
            author_name=commit[1] if commit else None,
            author_email=commit[2] if commit else None,
            date=commit[3] if commit else None,
        )
        for m in matches:
            # Offsets into the added text mean nothing in the file: the line does.
            placed = dataclasses.replace(m, line=change.numbers[m.line - 1], offset=-1)
            findings.append(Finding(placed, location))
    return findings, stats
