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
    findings_suppressed: int = 0
    """Findings dropped by an inline marker or the baseline."""

    def merge(self, other: ScanStats) -> None:
        self.files += other.files
        self.bytes += other.bytes
        self.skipped += other.skipped

    def to_dict(self) -> dict[str, float | int]:
        return {
            "files": self.files,
            "bytes": self.bytes,
            "seconds": round(self.seconds, 3),
            "skipped": self.skipped,
            "suppressed": self.findings_suppressed,
        }
