"""Counters of one scan, reported beside the findings."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class ScanStats:
    files: int = 0
    """Files (or blobs) read."""
    bytes: int = 0
    """Bytes read."""
    seconds: float = 0.0
    """Wall time of the scan."""
    skipped: int = 0
    """Inputs skipped with a warning (unreadable, special files...)."""
    members: int = 0
    """Archive members scanned (not counted in ``files``)."""
    member_bytes: int = 0
    """Decompressed bytes of those members (not counted in ``bytes``)."""
    findings_suppressed: int = 0
    """Findings dropped by an inline marker or the baseline."""

    def merge(self, other: ScanStats) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.skipped += other.skipped
        self.members += other.members
        self.member_bytes += other.member_bytes

    def to_dict(self) -> dict[str, float | int]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
            "members": self.members,
            "member_bytes": self.member_bytes,
            "suppressed": self.findings_suppressed,
        }
