"""The baseline: secrets already known and accepted, so only new leaks fail the build.

Entries are keyed by ``secret_sha256`` and hold no line numbers, paths or
timestamps: a baseline survives code moves, and two branches that baseline the
same secret write the same bytes, so merges do not conflict. The output is
canonical (sorted keys, two-space indent, trailing newline): rewriting an
unchanged baseline gives an identical file. No secret is ever stored, only its
hash, its type and the redacted hint a reviewer needs to recognise it.

Format (version 1)::

    {
      "secrets": {
        "<secret_sha256>": {"redacted": "spk_ab…xyz", "type": "soundpiece_api_key"}
      },
      "tool": "soundpiece-scan",
      "version": 1
    }
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterable
from typing import Any

from scanner.errors import ScanError
from scanner.findings import Finding

VERSION = 1
MAX_BYTES = 64 * 1024 * 1024
"""Larger files are refused: a real baseline is a few kilobytes; this is garbage or an attack."""

_SHA256 = re.compile(r"[0-9a-f]{64}")

StrPath = str | os.PathLike[str]


class BaselineError(ScanError):
    """The baseline file cannot be used; the message is one line, meant for the user."""


def render_baseline(findings: Iterable[Finding]) -> bytes:
    """The canonical bytes of the baseline accepting every secret in ``findings``."""
    secrets = {
        finding.secret_sha256: {"type": finding.type, "redacted": finding.match.redacted}
        for finding in findings
    }
    document = {"version": VERSION, "tool": "soundpiece-scan", "secrets": secrets}
    return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=True) + "\n").encode("ascii")


def write_baseline(path: StrPath, findings: Iterable[Finding]) -> None:
    """Write the baseline atomically: a crash leaves the old file or the new one, never half."""
    data = render_baseline(findings)
    tmp = f"{os.fsdecode(path)}.{os.getpid()}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)  # the umask decides, as for any file
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp, path)
    except BaseException:
        os.unlink(tmp)
        raise


def _read(path: StrPath) -> bytes:
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except FileNotFoundError:
        raise BaselineError(f"{os.fsdecode(path)}: baseline file not found") from None
    except OSError as exc:
        raise BaselineError(f"{os.fsdecode(path)}: cannot read baseline: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise BaselineError(f"{os.fsdecode(path)}: baseline larger than {MAX_BYTES // 2**20} MiB")
    return data


def parse_baseline(data: bytes) -> frozenset[str]:
    """The accepted ``secret_sha256`` values in baseline ``data``; raises :class:`ValueError`."""
    try:
        document: Any = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ValueError("not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise ValueError(f"not valid JSON ({exc.msg} at line {exc.lineno} column {exc.colno})") from None
    except RecursionError:
        raise ValueError("not valid JSON (nested too deeply)") from None
    if not isinstance(document, dict):
        raise ValueError("expected a JSON object at the top level")
    version = document.get("version")
    if type(version) is not int:
        raise ValueError("missing or invalid 'version'")
    if version != VERSION:
        raise ValueError(f"unsupported version {version} (this scanner reads version {VERSION})")
    secrets = document.get("secrets")
    if not isinstance(secrets, dict):
        raise ValueError("'secrets' must be an object keyed by secret_sha256")
    for key, entry in secrets.items():
        if not _SHA256.fullmatch(key):
            raise ValueError(f"key {key[:80]!r} is not a lowercase hex SHA-256")
        if not isinstance(entry, dict) or not isinstance(entry.get("type"), str):
            raise ValueError(f"entry {key} must be an object with a string 'type'")
    return frozenset(secrets)


def load_baseline(path: StrPath) -> frozenset[str]:
    """The set of ``secret_sha256`` accepted by the baseline at ``path``.

    Every problem (missing, unreadable, too large, not JSON, wrong shape) is a
    :class:`BaselineError` naming the file, never a traceback.
    """
    try:
        return parse_baseline(_read(path))
    except ValueError as exc:
        raise BaselineError(f"{os.fsdecode(path)}: invalid baseline: {exc}") from None
