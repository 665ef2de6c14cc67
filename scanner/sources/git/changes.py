"""What a change adds as a source: the staged index, or the commits of ``A..B``.

Flow: git writes the diff -> the added lines of each file are one input ->
matches are placed back on their line in the new file.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator

from scanner.engine.engine import bytes_reader
from scanner.filters.exclude import PathExcluder, drop_excluded
from scanner.findings import Finding, Location
from scanner.sources.base import Hit, Opened, Warn
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


class ChangesSource:
    """The files of a diff, each unit the lines it adds (scanned here: a diff is small)."""

    unit_name = "files"
    total = None
    short_read_is_end = False
    pool_after = None

    def __init__(self, patch: Callable[[], bytes], excluder: PathExcluder | None = None) -> None:
        self._patch = patch
        self._excluder = excluder

    @classmethod
    def staged(cls, repo: Repo, excluder: PathExcluder | None = None) -> ChangesSource:
        """Lines the next commit would add (the index against HEAD)."""
        if repo.bare:
            raise GitError("--staged needs a work tree, and this repository is bare")
        return cls(lambda: repo.run("diff", "--cached", *_DIFF_OPTIONS, "--"), excluder)

    @classmethod
    def range(cls, repo: Repo, revision_range: str, excluder: PathExcluder | None = None) -> ChangesSource:
        """Lines that the commits of ``revision_range`` add (a push or a pull request)."""
        if revision_range.startswith("-"):
            raise GitError(f"bad range {revision_range!r}")
        try:
            repo.run("rev-list", "--count", revision_range, "--")
        except GitError as exc:
            raise GitError(f"bad range {revision_range!r}: {exc}") from None
        return cls(
            lambda: repo.run(
                "log",
                "--reverse",
                "--format=%x01%H%x00%an%x00%ae%x00%aI",
                "-p",
                "--cc",
                "--root",  # a root commit's files too, whatever the user's log.showRoot
                *_DIFF_OPTIONS,
                revision_range,
                "--",
            ),
            excluder,
        )

    def units(self, stats: ScanStats, warn: Warn) -> Iterator[AddedLines]:
        return parse_patch(self._patch())

    def open(self, unit: AddedLines, stats: ScanStats, warn: Warn) -> Opened:
        yield unit, bytes_reader(b"\n".join(unit.lines)), None

    def findings(self, hits: list[Hit], stats: ScanStats, warn: Warn) -> list[Finding]:
        findings: list[Finding] = []
        for change, matches in hits:
            assert isinstance(change, AddedLines)
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
        return drop_excluded(findings, self._excluder)

    def close(self) -> None:
        pass
