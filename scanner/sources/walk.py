"""Walking files and directories: regular files only, symlinks never followed.

Paths stay ``bytes`` from the command line to the report, so names that are not
valid UTF-8 are walked and reported faithfully.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from scanner.errors import ScanError
from scanner.findings import display_path as _show

if TYPE_CHECKING:
    from scanner.filters.exclude import PathExcluder

Warn = Callable[[str], None]


class PathNotFound(ScanError):
    """A path named on the command line does not exist (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Root:
    """A path named by the user, and the prefix to strip for exclude matching."""

    path: bytes
    is_dir: bool


def resolve_roots(paths: Sequence[str | bytes]) -> list[Root]:
    """Check every named path exists before scanning anything."""
    roots = []
    for raw in paths:
        path = os.fsencode(raw)
        try:
            st = os.stat(path)
        except FileNotFoundError:
            raise PathNotFound(f"{os.fsdecode(path)}: no such file or directory") from None
        except OSError as exc:
            raise PathNotFound(f"{os.fsdecode(path)}: {exc.strerror}") from None
        roots.append(Root(path, stat.S_ISDIR(st.st_mode)))
    return roots


@dataclass(frozen=True, slots=True)
class Walker:
    """Lists regular files; symlinks are never followed.

    Special files (FIFOs, devices, sockets) get a warning: reading them could
    block forever or never end. Directories that cannot be listed get one too.
    Directories can be listed one at a time (:meth:`list_dir`), so several
    processes can share one walk.
    """

    excluder: PathExcluder | None = None
    skip_git: bool = True
    skip_files: frozenset[tuple[int, int]] = frozenset()
    """(device, inode) of files never to scan: our own report and baseline, however spelled."""

    def walk(self, roots: Sequence[Root], warn: Warn) -> Iterator[bytes]:
        for root in roots:
            if root.is_dir:
                yield from self.walk_tree(root.path, prefix_length(root.path), warn)
            elif os.path.islink(root.path):  # the reader opens with O_NOFOLLOW: say so plainly
                warn(f"{_show(root.path)}: skipped, symbolic link (not followed; name its target)")
            elif _is_regular(root.path, warn):
                yield root.path

    def walk_tree(self, directory: bytes, prefix_len: int, warn: Warn) -> Iterator[bytes]:
        """Every file under ``directory``; ``prefix_len`` strips the root for exclude globs."""
        stack = [directory]
        while stack:
            files, subdirectories = self.list_dir(stack.pop(), prefix_len, warn)
            yield from files
            stack += subdirectories

    def list_dir(self, directory: bytes, prefix_len: int, warn: Warn) -> tuple[list[bytes], list[bytes]]:
        """The files and the subdirectories to walk, of one directory."""
        files: list[bytes] = []
        subdirectories: list[bytes] = []
        excluder = self.excluder
        skip_inodes = {inode for _, inode in self.skip_files}
        try:
            with os.scandir(directory) as entries:
                for entry in entries:
                    path = entry.path
                    if entry.is_dir(follow_symlinks=False):
                        if self.skip_git and entry.name == b".git":
                            continue
                        if excluder and excluder.excludes(_relative(path, prefix_len), True):
                            continue
                        subdirectories.append(path)
                    elif entry.is_file(follow_symlinks=False):
                        if excluder and excluder.excludes(_relative(path, prefix_len), False):
                            continue
                        if skip_inodes and entry.inode() in skip_inodes and self._skipped(entry):
                            continue
                        files.append(path)
                    elif not entry.is_symlink():
                        warn(f"{_show(path)}: skipped, not a regular file ({_kind(path)})")
        except OSError as exc:
            warn(f"{_show(directory)}: cannot list directory: {exc.strerror}")
        return files, subdirectories

    def _skipped(self, entry: os.DirEntry[bytes]) -> bool:
        try:
            return (entry.stat(follow_symlinks=False).st_dev, entry.inode()) in self.skip_files
        except OSError:
            return False


def file_identities(paths: Iterable[str | bytes]) -> frozenset[tuple[int, int]]:
    """(device, inode) of the paths that exist, for :attr:`Walker.skip_files`."""
    found = set()
    for path in paths:
        try:
            st = os.stat(path)
        except OSError:
            continue
        found.add((st.st_dev, st.st_ino))
    return frozenset(found)


def prefix_length(root: bytes) -> int:
    """Bytes to strip from walked paths to make them relative to ``root``.

    scandir joins names without doubling a trailing separator: "dir//" gives "dir//x".
    """
    return len(root) + (0 if root.endswith(b"/") else 1)


def _is_regular(path: bytes, warn: Warn) -> bool:
    try:
        mode = os.stat(path).st_mode
    except OSError as exc:
        warn(f"{_show(path)}: skipped: {exc.strerror}")
        return False
    if stat.S_ISREG(mode):
        return True
    warn(f"{_show(path)}: skipped, not a regular file ({_kind(path)})")
    return False


def _kind(path: bytes) -> str:
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return "vanished"
    if stat.S_ISFIFO(mode):
        return "FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "device"
    if stat.S_ISSOCK(mode):
        return "socket"
    return "special file"


def _relative(path: bytes, prefix_len: int) -> str:
    return os.fsdecode(path[prefix_len:]).replace(os.sep, "/")
