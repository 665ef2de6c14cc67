"""The bounds that keep a hostile archive (a zip bomb, a million entries, nesting) from hurting a scan.

A bound reached is one warning naming the file, and the scan goes on: the rest of a
member is skipped (the next member is still read), or the rest of the archive when
its own budget is spent. The raw bytes of every input are scanned anyway.
"""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1 << 20


@dataclass(frozen=True, slots=True)
class Limits:
    """Configurable through the command line and the configuration file (``archive-*`` keys)."""

    depth: int = 3
    """Archives inside archives opened (an archive in a directory is depth 1)."""
    member_bytes: int = 256 * MIB
    """Decompressed bytes read from one member."""
    archive_bytes: int = 1024 * MIB
    """Decompressed bytes read from one archive: its members and nested archives together."""
    ratio: int = 250
    """Decompressed bytes per compressed byte, checked once a member is past :data:`RATIO_FLOOR`."""
    members: int = 50_000
    """Entries listed in one archive, nested archives included."""
    in_memory: int = 32 * MIB
    """Largest archive held in memory to be opened: a zip read from a stream (git, stdin, another
    archive) needs its end first; a nested archive in a tar stream cannot be read twice."""
    window: int = 64 * MIB
    """Memory a decompressor may take (xz's dictionary, zstd's window); larger ones are refused."""
    mail_parts: int = 1000
    """MIME parts read from one message; the rest of a message with more is not decoded."""
    opened: frozenset[str] = frozenset({"archives", "mail", "pdf", "hex"})
    """The containers opened (:data:`scanner.carriers.OPENED`); set by the runner, not a bound."""


OPTIONS = (
    ("archive-depth", "depth", "archives inside archives opened (0: none)"),
    ("archive-member-bytes", "member_bytes", "decompressed bytes read from one member"),
    ("archive-bytes", "archive_bytes", "decompressed bytes read from one archive, all members"),
    ("archive-ratio", "ratio", "largest decompression ratio of a member past 1 MiB"),
    ("archive-members", "members", "entries listed in one archive"),
    ("archive-in-memory", "in_memory", "largest archive held in memory to be opened"),
    ("archive-window", "window", "memory an xz or zstd decompressor may take"),
    ("mail-parts", "mail_parts", "MIME parts read from one message"),
)
"""Each bound's name as an option (``--archive-bytes``), a configuration key and in warnings; its
:class:`Limits` field; what it bounds. The one place these names are written."""
SIZES = frozenset({"member_bytes", "archive_bytes", "in_memory", "window"})
"""The fields that are byte sizes (written with KiB, MiB or GiB); the others are counts."""


RATIO_FLOOR = 1 * MIB
"""A member may always decompress this much, whatever its ratio (small files compress well)."""


class Budget:
    """What is left of one top-level archive's bounds, shared by its nested archives."""

    __slots__ = ("bytes_left", "limits", "members_left")

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self.bytes_left = limits.archive_bytes
        self.members_left = limits.members
