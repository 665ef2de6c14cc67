"""The checksum shared by every Soundpiece credential.

CRC-32 (IEEE, as ``zlib.crc32``) of the random part only, written in base62
(most significant digit first) and left-padded to six characters: the scheme
GitHub uses for ``ghp_`` tokens, so tools that know it can check ours.
"""

from __future__ import annotations

import zlib

BASE62 = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
CHECKSUM_LENGTH = 6


def checksum(random_part: bytes) -> bytes:
    """Return the six base62 checksum characters of ``random_part``."""
    value = zlib.crc32(random_part)
    digits = bytearray(b"0" * CHECKSUM_LENGTH)
    index = CHECKSUM_LENGTH
    while value:
        value, digit = divmod(value, 62)
        index -= 1
        digits[index] = BASE62[digit]
    return bytes(digits)


def is_base62(data: bytes) -> bool:
    """True when every byte of ``data`` is in the base62 alphabet."""
    return not data.translate(None, BASE62)
