"""Damaged archives are warnings; a bug while reading one is an error, never a "corrupt archive".

The archives are written by the standard library (and zstandard), then damaged by hypothesis:
bytes changed, inserted, cut. Whatever the damage, the scan ends with a verdict (0 or 1) and
reports nothing that is not checksum-valid.
"""

from __future__ import annotations

import base64
import bz2
import gzip
import lzma
import os
import quopri
import random
import subprocess
import sys
import tempfile
import zipfile
import zlib
from pathlib import Path

import zstandard
from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from scanner.archive.limits import Limits
from scanner.engine import Engine
from scanner.run import scan
from scanner.sources.files import FileSource
from tests.support.archives import tar_bytes, zip_bytes
from tests.support.processes import HANG_GUARD
from tests.support.scanner_cli import scan as scan_cli

ENGINE = Engine()
CARRIERS = {
    "zip": lambda data: zip_bytes({"a/b.txt": data, "c.txt": data[:100]}),
    "zip-bzip2": lambda data: zip_bytes({"a/b.txt": data}, zipfile.ZIP_BZIP2),
    "zip-lzma": lambda data: zip_bytes({"a/b.txt": data}, zipfile.ZIP_LZMA),
    "tar": lambda data: tar_bytes({"a/b.txt": data, "d": data[:10]}),
    "tgz": lambda data: tar_bytes({"a/b.txt": data}, "w:gz"),
    "tbz": lambda data: tar_bytes({"a/b.txt": data}, "w:bz2"),
    "txz": lambda data: tar_bytes({"a/b.txt": data}, "w:xz"),
    "gz": gzip.compress,
    "bz2": bz2.compress,
    "xz": lzma.compress,
    "zst": lambda data: zstandard.ZstdCompressor().compress(data),
    "eml": lambda data: (
        b"From: a@example.com\r\nTo: b@example.com\r\nMIME-Version: 1.0\r\n"
        b"Content-Type: multipart/mixed; boundary=b\r\n\r\n"
        b"--b\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n"
        + quopri.encodestring(data)
        + b"\r\n--b\r\nContent-Transfer-Encoding: base64\r\n\r\n"
        + base64.encodebytes(zip_bytes({"z.txt": data}))
        + b"\r\n--b--\r\n"
    ),
    "pdf": lambda data: (
        b"%PDF-1.4\n4 0 obj\n<< /Filter /FlateDecode >>\nstream\n"
        + zlib.compress(b"BT [(" + data.replace(b"(", b"").replace(b")", b"") + b")] TJ ET")
        + b"\nendstream\nendobj\n"
    ),
    "nested": lambda data: zip_bytes(
        {"in.zip": zip_bytes({"x": data}), "in.tgz": tar_bytes({"y": data}, "w:gz")}
    ),
}


def damaged(data: bytes, edits: list[tuple[int, int, bytes]]) -> bytes:
    """``data`` with each (kind, place, bytes) edit: 0 changes a byte, 1 inserts, 2 deletes, 3 cuts."""
    out = bytearray(data)
    for kind, place, extra in edits:
        at = place % (len(out) or 1)
        if kind == 0 and out:
            out[at] = extra[0] if extra else 0
        elif kind == 1:
            out[at:at] = extra
        elif kind == 2:
            del out[at : at + len(extra) + 1]
        else:
            del out[max(at, 4) :]
    return bytes(out)


EDITS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 1 << 20), st.binary(min_size=1, max_size=20)),
    min_size=1,
    max_size=6,
)


@settings(max_examples=300, deadline=None)
@given(carrier=st.sampled_from(sorted(CARRIERS)), edits=EDITS, size=st.integers(0, 70_000))
def test_damage_anywhere_is_a_warning_at_most(carrier: str, edits, size: int) -> None:
    token = rules.API_KEY.mint().encode()
    data = damaged(CARRIERS[carrier](b"x" * size + token + b"\n"), edits)
    warned: list[str] = []
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "carrier.bin").encode()
        with open(path, "wb") as handle:
            handle.write(data)
        findings, _ = scan([FileSource.listed([path])], ENGINE, warn=warned.append, limits=Limits())
    assert all(rules.recognise(f.match.secret) for f in findings)
    assert all(message.startswith("carrier.bin") or "carrier.bin" in message for message in warned)


def test_many_damaged_archives_through_the_command_line(tmp_path: Path) -> None:
    rng = random.Random(18)
    token = rules.API_KEY.mint().encode()
    for copy in range(12):
        for name, build in CARRIERS.items():
            data = build(os.urandom(rng.randrange(3000)) + token + b"x" * rng.randrange(70_000))
            edits = [
                (rng.randrange(4), rng.randrange(1 << 20), os.urandom(rng.randint(1, 20))) for _ in range(3)
            ]
            (tmp_path / f"{copy}-{name}.bin").write_bytes(damaged(data, edits))
    result = scan_cli("--format", "json", "-j", "2", ".", cwd=tmp_path, timeout=HANG_GUARD)
    assert result.returncode in (0, 1), result.stderr.decode()
    assert b"Traceback" not in result.stderr
    assert all(line.startswith(b"soundpiece-scan: warning: ./") for line in result.stderr.splitlines())


BUG = """\
import sys, zipfile
def readinto(self, buffer):
    raise TypeError("boom")
zipfile.ZipExtFile.readinto = readinto
from scanner.cli import main
sys.exit(main())
"""


def test_a_bug_while_reading_an_archive_is_an_error_not_a_corrupt_archive(tmp_path: Path) -> None:
    """A programming error (here zipfile's reader raising TypeError) must not be reported as a damaged
    archive and the scan carried on as if clean: exit 2, its traceback, and one line saying it is a bug."""
    (tmp_path / "app.zip").write_bytes(zip_bytes({"config/.env": b"K=1\n"}))
    result = subprocess.run(
        [sys.executable, "-c", BUG, "--no-progress", "app.zip"],
        cwd=tmp_path,
        capture_output=True,
        timeout=HANG_GUARD,
    )
    assert result.returncode == 2, result
    err = result.stderr.decode()
    assert "warning" not in err and "corrupt" not in err
    assert "Traceback" in err and "\nTypeError: boom\n" in err
    last = err.strip().splitlines()[-1]
    assert last.startswith(
        "soundpiece-scan: error: internal error (TypeError: boom): a bug in soundpiece-scan"
    )
