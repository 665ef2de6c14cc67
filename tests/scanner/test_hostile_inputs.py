"""Inputs that try to break the scanner: special files, unreadable and vanishing files,
random contents and random names, and the progress line on a terminal.

CLI runs go through a real subprocess (with a timeout: nothing may hang); the
property tests with many examples run in-process for speed.
"""

from __future__ import annotations

import base64
import errno
import io
import json
import os
import pty
import select
import stat
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
import scanner.run as run_module
import scanner.sources.files as file_source
from scanner.engine import Engine
from scanner.engine.engine import LINE_CONTEXT
from scanner.filters import INLINE_MARKER
from scanner.findings import display_path
from scanner.progress import ProgressLine
from scanner.report.text import printable
from scanner.sources.files import FileSource
from tests.support.processes import HANG_GUARD
from tests.support.scanner_cli import scan, scan_json

ROOT = Path(__file__).resolve().parents[2]
MIB = 1 << 20


def warnings(result: subprocess.CompletedProcess) -> list[str]:
    lines = result.stderr.decode().splitlines()
    assert all(line.startswith("soundpiece-scan: warning: ") for line in lines), lines
    return [line.removeprefix("soundpiece-scan: warning: ") for line in lines]


def planted_tree(root: Path) -> str:
    """A readable file with one credential, so a scan that goes on proves it."""
    key = rules.API_KEY.mint()
    (root / "ok.txt").write_text(f"key={key}\n")
    return key


# --- special and unreadable files ---------------------------------------------------------


def test_fifo_in_walked_dir_and_named(tmp_path: Path) -> None:
    planted_tree(tmp_path)
    os.mkfifo(tmp_path / "pipe")
    result, doc = scan_json(cwd=tmp_path)
    assert result.returncode == 1
    assert [f["path"] for f in doc["findings"]] == ["./ok.txt"]
    assert warnings(result) == ["./pipe: skipped, not a regular file (FIFO)"]
    assert (doc["stats"]["files"], doc["stats"]["skipped"]) == (1, 1)
    result, doc = scan_json("pipe", "ok.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert [f["path"] for f in doc["findings"]] == ["ok.txt"]
    assert warnings(result) == ["pipe: skipped, not a regular file (FIFO)"]


def test_dev_null_named(tmp_path: Path) -> None:
    planted_tree(tmp_path)
    result, doc = scan_json("/dev/null", "ok.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert len(doc["findings"]) == 1
    assert warnings(result) == ["/dev/null: skipped, not a regular file (device)"]


@pytest.mark.parametrize("device", ["/dev/zero", "/dev/urandom"])
def test_endless_devices_named(tmp_path: Path, device: str) -> None:
    assert os.path.exists(device), f"{device} is part of every Linux system"
    result = scan(device, cwd=tmp_path)
    assert result.returncode == 0
    assert warnings(result) == [f"{device}: skipped, not a regular file (device)"]


def test_char_device_in_walked_dir(tmp_path: Path) -> None:
    planted_tree(tmp_path)
    # Needs CAP_MKNOD: the suite runs as root (as CI does); elsewhere this fails, it does not skip.
    os.mknod(tmp_path / "zero", stat.S_IFCHR | 0o666, os.makedev(1, 5))  # /dev/zero
    result, doc = scan_json(cwd=tmp_path)
    assert result.returncode == 1
    assert len(doc["findings"]) == 1
    assert warnings(result) == ["./zero: skipped, not a regular file (device)"]


def test_socket_in_walked_dir(tmp_path: Path) -> None:
    import socket

    planted_tree(tmp_path)
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(os.fspath(tmp_path / "s.sock"))
        result, doc = scan_json(cwd=tmp_path)
    finally:
        sock.close()
    assert len(doc["findings"]) == 1
    assert warnings(result) == ["./s.sock: skipped, not a regular file (socket)"]


def test_unreadable_file_is_a_warning_and_the_scan_goes_on(tmp_path: Path) -> None:
    """``/proc/self/mem`` is a regular file that fails to read (EIO) even for root."""
    assert os.path.exists("/proc/self/mem"), "the suite needs /proc"
    planted_tree(tmp_path)
    result, doc = scan_json("/proc/self/mem", "ok.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert len(doc["findings"]) == 1
    [warning] = warnings(result)
    assert warning.startswith("/proc/self/mem: skipped: ")
    assert doc["stats"]["skipped"] == 1
    assert doc["stats"]["files"] == 1


def test_chmod_000_file_is_a_warning(tmp_path: Path) -> None:
    """Run without the privilege to override file modes (root included): the file cannot be read."""
    key = planted_tree(tmp_path)
    locked = tmp_path / "locked.txt"
    locked.write_text(rules.API_KEY.mint())
    locked.chmod(0)
    result, doc = scan_json(cwd=tmp_path, privileged=False)
    assert result.returncode == 1
    assert [(f["path"], f["secret_sha256"]) for f in doc["findings"]] == [("./ok.txt", rules.identity(key))]
    assert warnings(result) == ["./locked.txt: skipped: Permission denied"]
    assert (doc["stats"]["files"], doc["stats"]["skipped"]) == (1, 1)


def test_named_symlink_to_a_file(tmp_path: Path) -> None:
    """A symlink named on the command line is not followed (as in a walk), and says so clearly."""
    key = planted_tree(tmp_path)
    (tmp_path / "link.txt").symlink_to("ok.txt")
    result, doc = scan_json("link.txt", cwd=tmp_path)
    assert result.returncode == 0
    assert key.encode() not in result.stdout + result.stderr
    assert warnings(result) == ["link.txt: skipped, symbolic link (not followed; name its target)"]
    assert (doc["findings"], doc["stats"]["files"], doc["stats"]["skipped"]) == ([], 0, 1)


def test_empty_and_tiny_files(tmp_path: Path) -> None:
    for name, data in {"empty": b"", "nl": b"\n", "cr": b"\r", "nul": b"\0", "prefix": b"spk_"}.items():
        (tmp_path / name).write_bytes(data)
    result, doc = scan_json(cwd=tmp_path)
    assert (result.returncode, result.stderr) == (0, b"")
    assert doc["stats"]["files"] == 5
    assert doc["stats"]["bytes"] == 7


def test_huge_single_line_with_multibyte_text(tmp_path: Path) -> None:
    key = rules.WEBHOOK_SECRET.mint()
    data = "é".encode() * (MIB + 3) + key.encode() + b"\xff" * 100
    (tmp_path / "wide.txt").write_bytes(data)
    for source in (["wide.txt"], ["-"]):
        _, doc = scan_json(*source, cwd=tmp_path, input=data if source == ["-"] else None)
        assert [(f["line"], f["column"]) for f in doc["findings"]] == [(1, MIB + 4)]


@pytest.mark.parametrize("jobs", [1, 2])
def test_vanished_file_is_a_warning(monkeypatch: pytest.MonkeyPatch, jobs: int) -> None:
    real_open = file_source.open_reader

    def vanish_then_open(path: bytes):  # listed by the walker, gone when it is read
        if path == gone:
            os.unlink(path)
        return real_open(path)

    monkeypatch.setattr(file_source, "open_reader", vanish_then_open)
    with tempfile.TemporaryDirectory() as tmp:
        gone, kept = os.path.join(tmp, "gone").encode(), os.path.join(tmp, "kept").encode()
        key = rules.API_KEY.mint()
        for path in (gone, kept):
            with open(path, "w") as f:
                f.write(key)
        messages: list[str] = []
        source = FileSource.listed([gone, kept])
        findings, stats = run_module.scan([source], Engine(), jobs=jobs, warn=messages.append)
    assert [f.location.path for f in findings] == [kept]
    assert messages == [f"{display_path(gone)}: skipped: No such file or directory"]
    assert (stats.files, stats.skipped) == (1, 1)


@pytest.mark.parametrize("change", ["grow", "truncate", "replace_with_dir"])
def test_file_changing_during_the_scan(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, change: str) -> None:
    key = rules.API_KEY.mint()
    path = tmp_path / "moving.log"
    data = planted_size(3 * MIB, {10: key, 2 * MIB: key})
    path.write_bytes(data)
    real_open = file_source.open_reader

    def open_then_change(p: bytes):
        fd, reader = real_open(p)
        if change == "truncate":
            os.truncate(p, MIB // 2)
        if change != "grow":
            return fd, reader
        reads = 0

        def grow_after_first_read(view):  # the file keeps growing while it is read
            nonlocal reads
            n = reader(view)
            reads += 1
            if reads < 50:
                with open(p, "ab") as f:
                    f.write(b"x" * MIB + rules.API_KEY.mint().encode())
            return n

        return fd, grow_after_first_read

    monkeypatch.setattr(file_source, "open_reader", open_then_change)
    messages: list[str] = []
    if change == "replace_with_dir":
        path.unlink()
        path.mkdir()
    findings, stats = run_module.scan(
        [FileSource.listed([os.fsencode(path)])], Engine(), warn=messages.append
    )
    if change == "grow":  # bounded by the size when it was opened
        assert stats.bytes == len(data)
        assert [f.match.offset for f in findings] == [10, 2 * MIB]
    elif change == "truncate":
        assert stats.bytes <= MIB // 2
        assert [f.match.offset for f in findings] == [10]
    else:
        assert findings == []
        assert len(messages) == 1 and "skipped" in messages[0]


def planted_size(size: int, plants: dict[int, str]) -> bytes:
    data = bytearray(b"text line\n" * (size // 10 + 1))[:size]
    for offset, token in plants.items():
        data[offset : offset + len(token)] = token.encode()
    return bytes(data)


# --- properties ---------------------------------------------------------------------------

TOKENS = st.sampled_from(rules.FORMATS).map(lambda fmt: fmt.mint())
FILLER = st.one_of(
    st.binary(max_size=300),
    st.text(max_size=100).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.sampled_from([b"\n", b"\r\n", b"\xc3", b"\xe2\x82", "é".encode(), b"spk_", b"whsec_", b"A" * 40]),
)


def expected(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, len(data[line_start:offset].decode("utf-8", "replace")) + 1


def line_of(data: bytes, offset: int) -> bytes:
    start = data.rfind(b"\n", 0, offset) + 1
    end = data.find(b"\n", offset)
    return data[start : len(data) if end < 0 else end]


def build(parts: list[bytes | str]) -> tuple[bytes, list[tuple[int, str]]]:
    out = bytearray()
    plants = []
    for part in parts:
        if isinstance(part, str):
            plants.append((len(out), part))
            out += part.encode()
        else:
            out += part
    return bytes(out), plants


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    parts=st.lists(st.one_of(FILLER, TOKENS), max_size=30),
    chunk=st.sampled_from([44, 45, 64, 100, 1000, 1 << 20]),
)
def test_planted_tokens_found_exactly(parts, chunk: int) -> None:
    data, plants = build(parts)
    want = [(offset, *expected(data, offset), token) for offset, token in plants]
    engine = Engine(chunk_size=chunk)
    with tempfile.NamedTemporaryFile() as f:  # a file: read once, relocated when needed
        f.write(data)
        f.flush()
        findings, _ = run_module.scan([FileSource.listed([os.fsencode(f.name)])], engine, warn=pytest.fail)
    got = [(m.offset, m.line, m.column, m.secret.decode()) for m in (f.match for f in findings)]
    assert sorted(got) == want
    stream = io.BytesIO(data)  # a pipe: read once, lines counted as it goes
    matches, size = engine.scan(stream.readinto)
    assert size == len(data)
    assert sorted((m.offset, m.line, m.column, m.secret.decode()) for m in matches) == want
    # Inline markers need the token's whole line, even when a chunk boundary cuts it
    # (lines up to a chunk long; carriage returns aside, which markers never contain).
    for match in [f.match for f in findings] + matches:
        line = line_of(data, match.offset)
        if len(line) <= min(chunk - 44, LINE_CONTEXT):
            assert match.line_text.replace(b"\r", b"") == line.replace(b"\r", b"")


@settings(max_examples=4, deadline=None)
@given(parts=st.lists(st.one_of(FILLER, TOKENS), min_size=1, max_size=12))
def test_planted_tokens_found_exactly_by_the_cli(parts) -> None:
    data, plants = build(parts)
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "f.bin").write_bytes(data)
        result, doc = scan_json(cwd=Path(tmp))
    marked = [(o, t) for o, t in plants if INLINE_MARKER in line_of(data, o)]
    plants = [p for p in plants if p not in marked]
    assert result.returncode == (1 if plants else 0)
    assert doc["stats"]["suppressed"] == len(marked)
    got = [(f["offset"], f["line"], f["column"], f["secret_sha256"]) for f in doc["findings"]]
    assert got == [(o, *expected(data, o), rules.identity(t)) for o, t in plants]
    for _, token in plants:
        assert token.encode() not in result.stdout


NAMES = (
    st.binary(min_size=1, max_size=60)
    .map(lambda b: b.replace(b"/", b"_").replace(b"\0", b"_"))
    .filter(lambda b: b not in (b".", b"..", b".git"))
)


@settings(max_examples=5, deadline=None)
@given(name=NAMES)
def test_random_file_names_reported_faithfully(name: bytes) -> None:
    key = rules.API_KEY.mint()
    with tempfile.TemporaryDirectory() as tmp:
        with open(os.path.join(os.fsencode(tmp), name), "wb") as f:
            f.write(key.encode())
        cwd = Path(tmp)
        result, doc = scan_json(cwd=cwd)
        text = scan(cwd=cwd)
        named = scan("--format", "jsonl", "--", name, cwd=cwd)
    path = b"./" + name
    assert result.returncode == 1 and result.stderr == b""
    [finding] = doc["findings"]
    assert finding["path"] == display_path(path)
    if "path_base64" in finding:
        assert base64.b64decode(finding["path_base64"]) == path
    else:
        assert finding["path"].encode() == path
    assert text.returncode == 1
    out = text.stdout.decode()
    shown = printable(display_path(path))
    assert out.splitlines()[0] == f"{shown}:1:1: soundpiece_api_key {rules.redact(key)}"
    assert out.count("\n") == 2  # the finding and the summary: a name cannot add lines
    assert named.returncode == 1
    assert json.loads(named.stdout)["path"] == display_path(name)


# --- progress -----------------------------------------------------------------------------


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_progress_line_waits_a_second(monkeypatch: pytest.MonkeyPatch) -> None:
    clock = FakeClock()
    monkeypatch.setattr("scanner.progress.time.monotonic", clock)
    out = io.StringIO()
    line = ProgressLine(out)
    line.update(10, 5000)
    clock.now += 0.5
    line.update(20, 10_000)
    assert out.getvalue() == ""
    clock.now += 1.5
    line.update(3000, 4_000_000)
    assert out.getvalue() == "\r\x1b[K3,000 files, 4.0 MB, 2.0 MB/s"
    line.close()
    assert out.getvalue().endswith("\r\x1b[K")


def test_progress_line_never_shown_is_never_cleared() -> None:
    out = io.StringIO()
    line = ProgressLine(out)
    line.update(1, 1)
    line.close()
    assert out.getvalue() == ""


def test_in_process_scan_reports_progress(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """``--jobs 1`` (and every scan below the pool threshold) must feed the progress line too."""
    paths = []
    for i in range(20):
        (tmp_path / f"{i}.txt").write_bytes(b"x" * 1000)
        paths.append(os.fsencode(tmp_path / f"{i}.txt"))
    clock = FakeClock()
    monkeypatch.setattr(run_module.time, "monotonic", clock)
    real_open = file_source.open_reader

    def slow_open(*args):
        clock.now += 0.1
        return real_open(*args)

    monkeypatch.setattr(file_source, "open_reader", slow_open)
    calls: list[tuple[int, int]] = []

    def record(_source, files: int, nbytes: int) -> None:
        calls.append((files, nbytes))

    for jobs in (1, 2):  # jobs=2 but few files: still in-process
        calls.clear()
        source = FileSource.listed(iter(paths))
        run_module.scan([source], Engine(), jobs=jobs, warn=pytest.fail, progress=record)
        assert len(calls) >= 5, "progress not reported"
        assert all(b == 1000 * f for f, b in calls)
        assert calls == sorted(calls)


def run_on_pty_stderr(args: list[str], cwd: Path, prelude: str = "") -> tuple[int, bytes, bytes]:
    """Run the scanner with stderr on a terminal (stdout a pipe); return rc, stdout, stderr."""
    master, slave = pty.openpty()
    code = f"import sys\n{prelude}\nfrom scanner.cli import main\nsys.exit(main({args!r}))\n"
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=slave,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    os.close(slave)
    err = b""
    deadline = time.monotonic() + HANG_GUARD
    while time.monotonic() < deadline:
        ready, _, _ = select.select([master], [], [], 0.1)
        if ready:
            try:
                chunk = os.read(master, 65536)
            except OSError as exc:  # EIO: the child closed the terminal
                if exc.errno != errno.EIO:
                    raise
                break
            if not chunk:
                break
            err += chunk
        elif proc.poll() is not None:
            break
    os.close(master)
    out = proc.stdout.read()
    proc.stdout.close()
    return proc.wait(timeout=HANG_GUARD), out, err


# A scan of a few hundred files takes well under a second, so these runs make the
# progress line impatient (no one-second delay, frequent updates) instead of slow.
IMPATIENT = """
import importlib, scanner.progress
scanner.progress.DELAY = 0.0
for name in ("scanner.run", "scanner.pool"):  # wherever the interval lives
    module = importlib.import_module(name)
    if hasattr(module, "PROGRESS_INTERVAL"):
        module.PROGRESS_INTERVAL = 0.001
import time, scanner.sources.files
_open_reader = scanner.sources.files.open_reader
def _slow_open_reader(*args):  # ~0.3 s in all: the progress thread surely gets its turn
    time.sleep(0.0005)
    return _open_reader(*args)
scanner.sources.files.open_reader = _slow_open_reader
"""


@pytest.fixture(scope="module")
def pool_tree(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("progress")
    for i in range(file_source.POOL_THRESHOLD + 100):
        (root / f"f{i}.txt").write_bytes(b"some text\n" * 50)
    (root / "k.txt").write_text(rules.API_KEY.mint())
    return root


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_progress_on_a_terminal(pool_tree: Path, jobs: str) -> None:
    rc, out, err = run_on_pty_stderr(["--jobs", jobs, "--format", "json", "."], pool_tree, IMPATIENT)
    assert rc == 1, err
    assert json.loads(out)["stats"]["files"] == file_source.POOL_THRESHOLD + 101
    assert b"\r\x1b[K" in err and b" files, " in err, err
    assert err.endswith(b"\r\x1b[K")  # the line is cleared before the report


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_no_progress_flag_on_a_terminal(pool_tree: Path, jobs: str) -> None:
    rc, out, err = run_on_pty_stderr(["--no-progress", "--jobs", jobs, "."], pool_tree, IMPATIENT)
    assert rc == 1
    assert err == b""
    assert out.startswith(b"./k.txt:1:1: ")


def test_no_progress_when_stderr_is_not_a_terminal(pool_tree: Path) -> None:
    code = IMPATIENT + "from scanner.cli import main\nsys.exit(main(['--jobs', '2', '.']))\n"
    result = subprocess.run(
        [sys.executable, "-c", "import sys\n" + code],
        cwd=pool_tree,
        capture_output=True,
        timeout=HANG_GUARD,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 1
    assert result.stderr == b""


# --- the worker pool under pressure ------------------------------------------------------

MANY_WARNINGS = """
import sys
from scanner.engine import Engine
from scanner.engine.engine import LINE_CONTEXT
from scanner.run import scan
from scanner.sources.files import FileSource
paths = [b"/nonexistent/soundpiece-scan/a/rather/long/directory/name/%06d.txt" % i for i in range(20000)]
messages = []
findings, stats = scan([FileSource.listed(paths)], Engine(), jobs=2, warn=messages.append)
print(len(findings), stats.files, stats.skipped, len(messages))
"""


def test_pool_with_thousands_of_warnings_does_not_hang() -> None:
    """Workers warn through the results pipe; it must be drained while tasks are still fed."""
    result = subprocess.run(
        [sys.executable, "-c", MANY_WARNINGS],
        capture_output=True,
        timeout=HANG_GUARD,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == [b"0", b"0", b"20000", b"20000"]


def test_pool_walk_failure_is_raised_not_hung(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x")
    path = os.fsencode(tmp_path / "f.txt")

    def walk():
        for _ in range(file_source.POOL_THRESHOLD + file_source.BATCH + 10):  # past the pool's start
            yield path
        raise OSError(errno.EIO, "walk broke")

    with pytest.raises(OSError, match="walk broke"):
        run_module.scan([FileSource.listed(walk())], Engine(), jobs=2, warn=pytest.fail)
