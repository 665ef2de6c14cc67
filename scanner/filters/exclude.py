"""Path exclusion with gitignore-style globs, compiled once into one regular expression.

The walker asks about every file, so :meth:`PathExcluder.excludes` is a single
``fullmatch`` whatever the number of patterns. Semantics, as in ``.gitignore``:

- a pattern without ``/`` (``*.min.js``, ``fixtures``) matches a name at any depth;
- a pattern with a ``/`` at the start or in the middle (``/build``, ``docs/api``)
  is anchored at the scan root; a leading ``/`` only anchors;
- ``*`` and ``?`` never cross a ``/``; ``[abc]``, ``[a-z]`` and ``[!a-z]`` are
  character classes; ``\\`` escapes the next character;
- ``**`` crosses directories: ``**/fixtures`` (any depth), ``a/**/b`` (zero or
  more directories between), ``tests/**`` (everything inside ``tests``);
- a trailing ``/`` (``docs/``) matches directories only;
- when a directory matches, everything below it is excluded too, so a file
  path is excluded if any of its parent directories is.

Matching is case-sensitive. Negation (``!pattern``) is not supported and is
rejected rather than silently ignored. Paths are relative to the scan root with
``/`` separators, decoded with ``surrogateescape`` so undecodable names work.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING

from scanner.errors import ScanError

if TYPE_CHECKING:
    from scanner.findings import Finding

_ANY_DIRS = "(?:.*/)?"


class ExcludeError(ScanError, ValueError):
    """A pattern that cannot be used; the message names it."""


def _translate_class(glob: str, start: int) -> tuple[str, int] | None:
    """The regex for the ``[...]`` class at ``glob[start]`` and the index after it, or None."""
    i = start + 1
    negate = i < len(glob) and glob[i] in "!^"
    if negate:
        i += 1
    end = glob.find("]", i + 1 if i < len(glob) and glob[i] == "]" else i)
    if end < 0:
        return None
    body = "".join(c if c == "-" else re.escape(c) for c in glob[i:end])
    return (f"[^/{body}]" if negate else f"[{body}]"), end + 1


def _translate_name(glob: str) -> str:
    """The regex for one path segment (no ``/`` in ``glob``)."""
    out: list[str] = []
    i = 0
    while i < len(glob):
        char = glob[i]
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        elif char == "\\" and i + 1 < len(glob):
            i += 1
            out.append(re.escape(glob[i]))
        elif char == "[" and (translated := _translate_class(glob, i)) is not None:
            regex, i = translated
            out.append(regex)
            continue
        else:
            out.append(re.escape(char))
        i += 1
    return "".join(out)


def translate(pattern: str) -> tuple[str, bool]:
    """The regex for ``pattern`` (matching the path itself) and whether it matches directories only."""
    glob = pattern
    if glob.startswith("!"):
        raise ExcludeError(f"{pattern!r}: negation ('!') is not supported")
    dir_only = glob.endswith("/")
    glob = glob.rstrip("/")
    anchored = "/" in glob
    if glob.endswith("/**") and glob.strip("/") != "**":  # everything inside = the directory
        glob, dir_only = glob[:-3], True
    if not glob.strip("/"):
        raise ExcludeError(f"{pattern!r}: matches nothing")
    segments = glob.lstrip("/").split("/")
    parts: list[str] = []
    for index, segment in enumerate(segments):
        last = index == len(segments) - 1
        if segment == "**":
            parts.append(".*" if last else _ANY_DIRS)
        else:
            parts.append(_translate_name(segment) + ("" if last else "/"))
    regex = "".join(parts)
    return (regex if anchored else _ANY_DIRS + regex), dir_only


class PathExcluder:
    """Answers "is this path excluded?" for a fixed list of gitignore-style patterns."""

    __slots__ = ("_dirs", "_files", "patterns")

    def __init__(self, patterns: Iterable[str] = ()) -> None:
        self.patterns = tuple(p for p in patterns if p.strip())
        any_path: list[str] = []  # matches the path or one of its parents
        parent_only: list[str] = []  # directory-only patterns: for a file, only a parent may match
        for pattern in self.patterns:
            regex, dir_only = translate(pattern)
            (parent_only if dir_only else any_path).append(f"(?:{regex})")
        files = [f"(?:{'|'.join(any_path)})(?:/.*)?"] if any_path else []
        if parent_only:
            files.append(f"(?:{'|'.join(parent_only)})/.*")
        dirs = any_path + parent_only
        try:
            self._files = re.compile("|".join(files) or "(?!)", re.DOTALL)
            self._dirs = re.compile(f"(?:{'|'.join(dirs)})(?:/.*)?" if dirs else "(?!)", re.DOTALL)
        except re.error as exc:  # pragma: no cover - translate() escapes everything it does not build
            raise ExcludeError(f"invalid exclude patterns: {exc}") from None

    def excludes(self, rel_posix_path: str, is_dir: bool = False) -> bool:
        """True when the path (relative to the scan root, ``/``-separated) is excluded."""
        return (self._dirs if is_dir else self._files).fullmatch(rel_posix_path) is not None

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def __repr__(self) -> str:
        return f"PathExcluder({list(self.patterns)!r})"


def excludes_repository_path(excluder: PathExcluder | None, path: bytes) -> bool:
    """Whether a path as git gives it (relative to the repository's top, bytes) is excluded."""
    return (
        excluder is not None and bool(excluder) and excluder.excludes(path.decode("utf-8", "surrogateescape"))
    )


def drop_excluded(findings: list[Finding], excluder: PathExcluder | None) -> list[Finding]:
    """The findings whose path is not excluded, for sources that learn paths only with a finding
    (history: a blob's path is known once it is attributed). A walk and a diff leave excluded
    paths out before reading them."""
    if not excluder:
        return findings
    return [f for f in findings if not excludes_repository_path(excluder, f.location.path)]
