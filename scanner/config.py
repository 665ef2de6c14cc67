"""Project configuration: ``.soundpiece-scan.toml``, or ``[tool.soundpiece-scan]`` in ``pyproject.toml``.

Only the directory the scanner runs in is searched, and the dedicated file
wins outright when both exist (no merging, so what you read is what applies).
Both hold the same keys::

    exclude = ["tests/**", "*.min.js"]   # gitignore-style, see scanner.filters.exclude
    baseline = ".soundpiece-baseline.json"  # relative to the config file's directory
    plain = false                          # true: nothing decoded or opened (every carrier off)
    carriers = { hex = false, pdf = false }  # one carrier off (scanner.carriers); all on by default
    archive-depth = 3                      # the bounds on archives and mail (scanner.archive.limits);
    archive-member-bytes = "256MiB"        # sizes as bytes or with KiB, MiB, GiB

Mistakes are errors, not silently ignored settings: a typo in a key would
otherwise scan what the user meant to exclude, or fail a build they meant to
baseline.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from typing import Any

from scanner.archive.limits import OPTIONS, SIZES
from scanner.carriers import CARRIERS
from scanner.errors import ScanError

DEDICATED_FILE = ".soundpiece-scan.toml"
PYPROJECT_FILE = "pyproject.toml"
TOOL_TABLE = "soundpiece-scan"
MAX_BYTES = 4 * 1024 * 1024
"""Larger config files are refused rather than parsed."""
LIMIT_KEYS = {key: name for key, name, _ in OPTIONS}
"""``archive-member-bytes`` -> :attr:`Limits.member_bytes`, and so on: the command line's names."""
_KEYS = ("baseline", "carriers", "exclude", "plain", *LIMIT_KEYS)


class ConfigError(ScanError):
    """The configuration cannot be used; the message is one line, naming the file."""


@dataclass(frozen=True, slots=True)
class Config:
    exclude: tuple[str, ...] = ()
    """Gitignore-style patterns, relative to the scan root."""
    baseline: str | None = None
    """Path of the baseline file, already resolved against the config file's directory."""
    source: str | None = None
    """The file this came from, for messages; None when no configuration was found."""
    plain: bool = False
    """Tokens as written only: nothing decoded or opened."""
    carriers_off: frozenset[str] = frozenset()
    """Carriers switched off (names of :data:`scanner.carriers.CARRIERS`)."""
    limits: dict[str, int] = field(default_factory=dict)
    """Archive bounds set here (names of :class:`~scanner.archive.limits.Limits` fields)."""


def _read(path: str) -> bytes | None:
    """The file's bytes, or None when it does not exist."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_BYTES + 1)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror or exc}") from None
    if len(data) > MAX_BYTES:
        raise ConfigError(f"{path}: larger than {MAX_BYTES // 2**20} MiB")
    return data


def _parse(path: str, data: bytes) -> dict[str, Any]:
    import tomllib  # only when there is something to parse

    try:
        return tomllib.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise ConfigError(f"{path}: not UTF-8 text") from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: invalid TOML: {exc}") from None
    except RecursionError:
        raise ConfigError(f"{path}: invalid TOML: nested too deeply") from None


def _validated(path: str, table: dict[str, Any], where: str) -> Config:
    unknown = sorted(set(table) - set(_KEYS))
    if unknown:
        raise ConfigError(f"{path}: unknown key {where + unknown[0]!r} (expected one of: {', '.join(_KEYS)})")
    exclude = table.get("exclude", [])
    if not isinstance(exclude, list) or not all(isinstance(item, str) for item in exclude):
        raise ConfigError(f"{path}: {where + 'exclude'!r} must be a list of strings")
    from scanner.filters.exclude import ExcludeError, PathExcluder

    try:
        PathExcluder(exclude)  # report a bad pattern now, naming the file
    except ExcludeError as exc:
        raise ConfigError(f"{path}: {where + 'exclude'!r}: {exc}") from None
    baseline = table.get("baseline")
    if baseline is not None and (not isinstance(baseline, str) or not baseline):
        raise ConfigError(f"{path}: {where + 'baseline'!r} must be a non-empty string (a path)")
    plain = table.get("plain", False)
    if not isinstance(plain, bool):
        raise ConfigError(f"{path}: {where + 'plain'!r} must be true or false")
    carriers = table.get("carriers", {})
    if not isinstance(carriers, dict) or not all(isinstance(on, bool) for on in carriers.values()):
        raise ConfigError(f"{path}: {where + 'carriers'!r} must be a table of true or false (hex = false)")
    unknown_carriers = sorted(set(carriers) - set(CARRIERS))
    if unknown_carriers:
        expected = ", ".join(CARRIERS)
        raise ConfigError(
            f"{path}: unknown carrier {where}carriers.{unknown_carriers[0]} (expected one of: {expected})"
        )
    limits: dict[str, int] = {}
    for key, name in LIMIT_KEYS.items():
        if key in table:
            try:
                limits[name] = parse_limit(name, table[key])
            except ValueError as exc:
                raise ConfigError(f"{path}: {where + key!r}: {exc}") from None
    return Config(
        exclude=tuple(exclude),
        baseline=os.path.join(os.path.dirname(path), baseline) if baseline is not None else None,
        source=path,
        plain=plain,
        carriers_off=frozenset(name for name, on in carriers.items() if not on),
        limits=limits,
    )


_UNITS = {"": 1, "k": 1 << 10, "kib": 1 << 10, "m": 1 << 20, "mib": 1 << 20, "g": 1 << 30, "gib": 1 << 30}
_SIZE = re.compile(r"\s*(\d+)\s*([a-z]*)\s*", re.IGNORECASE)


def parse_limit(name: str, value: object) -> int:
    """An archive bound: a whole number; sizes may say ``KiB``, ``MiB`` or ``GiB``. ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("must be a number")
    if isinstance(value, int):
        number = value
    elif isinstance(value, str) and (m := _SIZE.fullmatch(value)) and m.group(2).lower() in _UNITS:
        if m.group(2) and name not in SIZES:
            raise ValueError(f"{value!r} is not a count")
        number = int(m.group(1)) * _UNITS[m.group(2).lower()]
    else:
        shown = repr(value) if isinstance(value, str) else type(value).__name__
        raise ValueError(f"{shown} is not a number" + (" or a size (256MiB)" if name in SIZES else ""))
    lowest = 0 if name == "depth" else 1
    if number < lowest:
        raise ValueError(f"must be at least {lowest}")
    return number


def load_config(start: str | os.PathLike[str]) -> Config:
    """The configuration for a scan run from directory ``start`` (defaults when there is none).

    ``os.path``, not pathlib: this runs on every start, and pathlib costs 5 ms to import.
    """
    dedicated = os.path.join(start, DEDICATED_FILE)
    data = _read(dedicated)
    if data is not None:
        return _validated(dedicated, _parse(dedicated, data), "")
    pyproject = os.path.join(start, PYPROJECT_FILE)
    data = _read(pyproject)
    if data is None or TOOL_TABLE.encode() not in data:  # most pyprojects: no TOML parse at all
        return Config()
    document = _parse(pyproject, data)
    tool = document.get("tool", {})
    table = tool.get(TOOL_TABLE) if isinstance(tool, dict) else None
    if table is None:
        return Config()
    if not isinstance(table, dict):
        raise ConfigError(f"{pyproject}: [tool.{TOOL_TABLE}] must be a table")
    return _validated(pyproject, table, f"tool.{TOOL_TABLE}.")
