"""A finding: an engine match placed at a location by its source.

Each part is said where it is known: how the bytes read (type, offset, line,
column) in the engine's :class:`Match`; where they came from (a path, a commit)
in the source's :class:`Location`; verdicts on the credential taken after the
scan on the :class:`Finding`. So an archive member's inner path belongs to
``Location``, an encoding the engine decoded to ``Match``, and whether a key is
live to ``Finding``.
"""

from __future__ import annotations

import dataclasses
import enum
from dataclasses import dataclass, field
from typing import Any

from scanner.engine.match import Match


def display_path(path: bytes) -> str:
    """A path as text, with bytes that are not UTF-8 written as ``\\xNN`` escapes."""
    return path.decode("utf-8", "backslashreplace")


INNER_SEPARATOR = "!"
"""Between an archive's path and a path inside it: ``app.zip!config/.env``."""
_DECOMPRESSED: tuple[tuple[bytes, bytes], ...] = (
    *((b".tgz", b".tar"), (b".tbz2", b".tar"), (b".txz", b".tar")),
    *((b".gz", b""), (b".bz2", b""), (b".xz", b""), (b".zst", b""), (b".zstd", b"")),
)


def inner_display(outer: bytes, inner: tuple[bytes, ...]) -> list[str]:
    """The names inside an archive as text. A compressed file's one member has no name of its
    own (``b""``): it is shown as the file's name less its suffix (``cfg.json.gz!cfg.json``)."""
    names = []
    previous = outer
    for name in inner:
        if not name:
            base = previous.rsplit(b"/", 1)[-1]
            name = next((base[: -len(s)] + r for s, r in _DECOMPRESSED if base.lower().endswith(s)), base)
        names.append(display_path(name))
        previous = name
    return names


@dataclass(slots=True, frozen=True)
class Location:
    """Where a run of bytes came from. ``path`` is raw bytes, so odd names survive."""

    path: bytes
    """File path as given or walked; ``b"-"`` for stdin; path inside the tree for git."""
    stdin: bool = False
    """Read from standard input: no file anywhere (SARIF and annotations name it ``<stdin>``)."""
    commit: str | None = None
    author_name: str | None = None
    author_email: str | None = None
    date: str | None = None
    blob: str | None = None
    inner: tuple[bytes, ...] = ()
    """Names inside the archive at ``path``, outermost first (an archive in an archive): the
    finding is in that member; ``()`` for the file itself."""

    @property
    def display(self) -> str:
        """``path``, or ``path!inner!names`` for an archive member."""
        if not self.inner:
            return display_path(self.path)
        return INNER_SEPARATOR.join([display_path(self.path), *inner_display(self.path, self.inner)])

    @property
    def inner_path(self) -> str | None:
        """The names inside the archive alone (``config/.env``), or None for the file itself."""
        return INNER_SEPARATOR.join(inner_display(self.path, self.inner)) if self.inner else None

    def within(self, inner: tuple[bytes, ...]) -> Location:
        """This location, inside the archive member ``inner`` (itself when ``inner`` is empty)."""
        return dataclasses.replace(self, inner=inner) if inner else self


class Liveness(enum.Enum):
    """What the Soundpiece API said of a found credential (``--verify``)."""

    LIVE = True
    """It answered 200: the key works. Revoke it now."""
    DEAD = False
    """It answered 401: revoked, never issued, or refused from where the scan ran (IP allowlist)."""
    UNKNOWN = None
    """Any other answer, no answer, or a signing secret (those are never sent anywhere)."""


@dataclass(slots=True, frozen=True)
class Finding:
    match: Match
    location: Location
    extra: dict[str, Any] = field(default_factory=dict, compare=False)
    live: Liveness | None = None
    """None: not asked (no ``--verify``)."""

    @property
    def type(self) -> str:
        return self.match.type

    @property
    def secret_sha256(self) -> str:
        return self.match.secret_sha256

    def to_dict(self, *, show_secrets: bool = False) -> dict[str, Any]:
        """The JSON form shared by the ``json``, ``jsonl`` and baseline writers."""
        loc = self.location
        out: dict[str, Any] = {
            "type": self.match.type,
            "path": loc.display,
            "line": self.match.line,
            "column": self.match.column,
            "offset": self.match.offset,
            "secret_sha256": self.match.secret_sha256,
            "redacted": self.match.redacted,
        }
        try:
            loc.path.decode("utf-8")
        except UnicodeDecodeError:
            import base64  # rare: imported only for a name that is not UTF-8

            out["path_base64"] = base64.b64encode(loc.path).decode("ascii")
        if loc.commit is not None:
            out["commit"] = loc.commit
            out["author"] = {"name": loc.author_name, "email": loc.author_email}
            out["date"] = loc.date
        if loc.blob is not None:
            out["blob"] = loc.blob
        if loc.inner:
            out["inner_path"] = loc.inner_path
        if self.match.encoding is not None:
            out["encoding"] = self.match.encoding
        if self.live is not None:
            out["live"] = self.live.value
        if show_secrets:
            out["secret"] = self.match.secret.decode("ascii")
        out.update(self.extra)
        return out
