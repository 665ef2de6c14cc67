"""The detection engine: bytes in, checksum-valid matches out."""

from scanner.engine.engine import DEFAULT_CHUNK, Engine, ReadInto
from scanner.engine.match import Match

__all__ = ["DEFAULT_CHUNK", "Engine", "Match", "ReadInto"]
