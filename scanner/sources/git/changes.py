"""What a change adds as a source: the staged index, or the commits of ``A..B``.

Flow: git writes the diff -> the added lines of each file are one input ->
matches are placed back on their line in the new file. A file whose added
bytes are binary, or start a container that is text (a mail message, a hex
dump), is also read whole from its new blob, so that it is opened: "lines
added" has no meaning inside one, so its members are scanned whole (only its
members: its raw bytes are the added lines' part).
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable, Iterator

from scanner.archive.sniff import sniff
from scanner.engine.engine import bytes_reader
from scanner.filters.exclude import PathExcluder, excludes_repository_path
from scanner.findings import Finding, Location, display_path
from scanner.sources.base import Hit, Opened, Warn
from scanner.sources.git.diff import AddedLines, parse_patch
from scanner.sources.git.objects import blob_reader
from scanner.sources.git.repo import GitError, Repo
from scanner.stats import ScanStats

_DIFF_OPTIONS = (
    "-U0",
    "--no-color",
    "--no-renames",
    "--text",
    "--no-ext-diff",
    "--no-textconv",
    "--full-index",  # whole blob ids on the index lines: a binary file is read from its blob
    # Explicit prefixes: the user's diff.noprefix / diff.mnemonicPrefix must not change the paths.
    "--src-prefix=a/",
    "--dst-prefix=b/",
)


class ChangesSource:
    """The files of a diff, each unit the lines it adds (scanned here: a diff is small)."""

    unit_name = "files"
    total: tuple[int, int] | None = None
    short_read_is_end = False
    pool_after: int | None = None

    def __init__(self, repo: Repo, patch: Callable[[], bytes], excluder: PathExcluder | None = None) -> None:
        self._repo = repo
        self._patch = patch
        self._excluder = excluder

    @classmethod
    def staged(cls, repo: Repo, excluder: PathExcluder | None = None) -> ChangesSource:
        """Lines the next commit would add (the index against HEAD)."""
        if repo.bare:
            raise GitError("--staged needs a work tree, and this repository is bare")
        return cls(repo, lambda: repo.run("diff", "--cached", *_DIFF_OPTIONS, "--"), excluder)

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
            repo,
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
        """The changed files, less excluded ones: their lines are not scanned, nor their blobs read."""
        return (c for c in parse_patch(self._patch()) if not excludes_repository_path(self._excluder, c.path))

    def open(self, unit: AddedLines, stats: ScanStats, warn: Warn) -> Opened:
        text = b"\n".join(unit.lines)
        yield unit, bytes_reader(text), None
        if unit.blob is not None and (_binary(text) or sniff(text, len(text)) is not None):
            reread = functools.partial(blob_reader, self._repo, unit.blob)
            try:
                yield WholeFile(unit), reread(), reread
            except GitError as exc:  # thrown in by the runner: the blob could not be read
                stats.skipped += 1
                warn(f"{display_path(unit.path)}: its blob could not be read whole: {exc}")

    def findings(self, hits: list[Hit], stats: ScanStats, warn: Warn) -> list[Finding]:
        findings: list[Finding] = []
        for key, inner, matches in hits:
            whole = isinstance(key, WholeFile)
            change = key.change if isinstance(key, WholeFile) else key
            assert isinstance(change, AddedLines)
            if whole != bool(inner):
                continue  # raw bytes from the added lines; members from the whole file, never from a diff
            commit = change.commit
            location = Location(
                path=change.path,
                commit=commit[0] if commit else None,
                author_name=commit[1] if commit else None,
                author_email=commit[2] if commit else None,
                date=commit[3] if commit else None,
                inner=inner,
            )
            if whole:  # a member, scanned whole: its own lines
                findings += [Finding(m, location) for m in matches]
                continue
            for m in matches:
                # Offsets into the added text mean nothing in the file: the line does.
                placed = dataclasses.replace(m, line=change.numbers[m.line - 1], offset=-1)
                findings.append(Finding(placed, location))
        return findings

    def label(self, key: AddedLines | WholeFile) -> str:
        return display_path(key.change.path if isinstance(key, WholeFile) else key.path)

    def finish(self, stats: ScanStats, warn: Warn) -> None:
        pass

    def close(self) -> None:
        pass


@dataclasses.dataclass(frozen=True, slots=True)
class WholeFile:
    """The key of a changed file read whole from its blob (for the archive members in it)."""

    change: AddedLines


def _binary(text: bytes) -> bool:
    """Added bytes that are not text: a NUL, or not UTF-8 (every archive format's header is)."""
    if b"\x00" in text:
        return True
    try:
        text.decode("utf-8")
    except UnicodeDecodeError:
        return True
    return False
