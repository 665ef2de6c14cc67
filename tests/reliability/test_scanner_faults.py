"""The scanner keeps its promises under faults and hostile input.

What tests/scanner already proves is not repeated here (see RELIABILITY.md):
this file adds the paths those tests do not take, namely planted tokens through the
real worker pool and through the git blob stream with blobs around the chunk size,
repositories damaged in ways the history tests do not cover, and trees that change
while they are scanned, a 10 GiB sparse file among them.

Every CLI run is a subprocess with a timeout (nothing may hang) and must never print
a traceback; memory is that of the scanner's whole process tree, pool workers included
(``tests/support/processes.py``).
"""

from __future__ import annotations

import itertools
import json
import os
import random
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
import scanner.sources.files as file_source
from scanner.engine import Engine
from scanner.engine.engine import bytes_reader
from scanner.pool import Pool
from scanner.run import UnitScanner, scan
from scanner.sources.files import FileSource
from scanner.sources.git.history import HistorySource
from scanner.sources.git.repo import open_repo
from tests.support.git import Repo
from tests.support.processes import (
    HANG_GUARD,
    TreePeak,
    process_tree,
    reaped_peak,
    unprivileged,
    wait_for,
    wait_measuring,
)

ROOT = Path(__file__).resolve().parents[2]

MIB = 1 << 20
GIB = 1 << 30
TOKEN_LEN = {fmt.prefix: fmt.length for fmt in rules.FORMATS}


# --- running the CLI ---------------------------------------------------------------------------


@dataclass
class Run:
    code: int
    stdout: bytes
    stderr: str
    seconds: float
    peak: TreePeak | None
    """The process tree's memory (see tests/support/processes.py); only from :func:`cli_measured`."""

    @property
    def doc(self) -> dict:
        return json.loads(self.stdout)

    @property
    def warnings(self) -> list[str]:
        return [line for line in self.stderr.splitlines() if "warning:" in line]


def cli(
    *args: str | bytes,
    cwd: Path,
    timeout: float = HANG_GUARD,
    env: dict[str, str] | None = None,
    privileged: bool = True,
    on_start: Callable[[int], None] | None = None,
) -> Run:
    """``soundpiece-scan --format json ARGS``: exit code, output and wall time.

    ``privileged=False`` runs it where file modes bind it, even as root (see ``unprivileged``).
    ``on_start`` is called with the scanner's pid once it runs (to act on it while it scans).
    """
    argv = [sys.executable, "-m", "scanner", "--no-progress", "--no-config", "--format", "json", *args]
    if not privileged:
        argv = unprivileged(argv)
    environment = dict(env or os.environ)
    environment["PYTHONPATH"] = str(ROOT)
    started = time.monotonic()
    proc = subprocess.Popen(
        [os.fsencode(a) for a in argv],
        cwd=cwd,
        env=environment,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    if on_start is not None:
        on_start(proc.pid)
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail(f"soundpiece-scan {args} did not finish in {timeout} s")
    seconds = time.monotonic() - started
    text = err.decode("utf-8", "replace")
    assert "Traceback" not in text, text
    return Run(proc.returncode, out, text, seconds, None)  # see cli_measured for memory


def cli_measured(*args: str | bytes, cwd: Path, timeout: float = HANG_GUARD) -> Run:
    """Like :func:`cli`, with the peak memory of the scanner's process tree (stdout to a file)."""
    argv = [sys.executable, "-m", "scanner", "--no-progress", "--no-config", "--format", "json", *args]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out_path, err_path, peak_path = cwd / ".out.json", cwd / ".err.txt", cwd / ".peak"
    started = time.monotonic()
    with out_path.open("wb") as out, err_path.open("wb") as err:
        proc = subprocess.Popen(
            reaped_peak([os.fsencode(a) for a in argv], peak_path),
            cwd=cwd,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=err,
        )
    peak = wait_measuring(proc, timeout, peak_path)
    if peak is None:
        pytest.fail(f"soundpiece-scan {args} did not finish in {timeout} s")
    seconds = time.monotonic() - started
    text = err_path.read_bytes().decode("utf-8", "replace")
    assert "Traceback" not in text, text
    stdout = out_path.read_bytes()
    out_path.unlink()
    err_path.unlink()
    peak_path.unlink()
    return Run(proc.returncode, stdout, text, seconds, peak)


# --- look-alikes -------------------------------------------------------------------------------


def lookalike(kind: str, token: str, rnd: random.Random) -> bytes:
    """A string that looks like a credential and is not one (ended by a NUL, so nothing extends it)."""
    prefix = "spk_" if token.startswith("spk_") else "whsec_"
    body = token[len(prefix) :]
    if kind == "checksum":  # one character of the 38 changed
        i = rnd.randrange(len(body))
        other = rnd.choice(rules.BASE62.decode().replace(body[i], ""))
        out = prefix + body[:i] + other + body[i + 1 :]
    elif kind == "truncated":
        out = token[: rnd.randrange(len(prefix), len(token))]
    elif kind == "prefix":  # the same valid 38 characters after another vendor's prefix
        out = rnd.choice(["spk-", "SPK_", "sk_", "spkx_", "whsek_", "WHSEC_", "whsec-"]) + body
    elif kind == "stripe":  # Stripe/Svix signing secrets: whsec_ + 32 base62 or base64, no checksum
        alphabet = rules.BASE62.decode() + ("+/" if rnd.random() < 0.5 else "")
        out = "whsec_" + "".join(rnd.choice(alphabet) for _ in range(rnd.choice([32, 38])))
    else:
        raise AssertionError(kind)
    assert rules.recognise(out) is None
    return out.encode() + b"\x00"


LOOKALIKES = ["checksum", "truncated", "prefix", "stripe"]


def plant(size: int, tokens: list[tuple[int, bytes]], seed: int) -> bytes:
    """``size`` random bytes (newlines included) with each token written at its offset."""
    data = bytearray(random.Random(seed).randbytes(size))
    for offset, token in tokens:
        data[offset : offset + len(token)] = token
    return bytes(data)


def expected_line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


# --- properties: through the real file reader and the worker pool --------------------------------

FILES = st.lists(
    st.tuples(
        st.integers(0, 3 * 4096),  # size of the random part
        st.lists(st.tuples(st.floats(0, 1), st.sampled_from(["token", *LOOKALIKES])), max_size=6),
        st.integers(0, 2**32),  # seed of the random bytes
    ),
    min_size=1,
    max_size=6,
)


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=FILES, chunk=st.integers(min_value=44, max_value=5000), formats=st.data())
def test_planted_tokens_found_and_lookalikes_never_through_the_worker_pool(files, chunk, formats) -> None:
    """Real files, the real reader (first read, then bounded reads), two forked workers."""
    import tempfile

    engine = Engine(chunk_size=chunk)
    want: set[tuple[bytes, int, int, str]] = set()
    with tempfile.TemporaryDirectory() as tmp:
        paths = []
        for n, (size, plants, seed) in enumerate(files):
            rnd = random.Random(seed)
            placed: list[tuple[int, bytes]] = []
            cursor = 0
            for where, kind in sorted(plants):
                fmt = formats.draw(st.sampled_from(rules.FORMATS))
                token = fmt.mint()
                text = token.encode() if kind == "token" else lookalike(kind, token, rnd)
                offset = max(cursor, int(where * size))
                placed.append((offset, text))
                cursor = offset + len(text) + 1
            data = plant(max(size, cursor), placed, seed)
            # Random bytes next to a look-alike could complete it; the NUL after each one prevents
            # that, and a random 38-character tail passing the checksum is a 1.8e-11 event.
            path = os.path.join(os.fsencode(tmp), b"f%d.bin" % n)
            with open(path, "wb") as f:
                f.write(data)
            paths.append(path)
            for offset, text in placed:
                if rules.recognise(text.decode("latin-1")) is not None:
                    want.add((path, offset, expected_line(data, offset), rules.identity(text)))
        half = len(paths) // 2 or 1
        tasks = [paths[:half], paths[half:]]
        source = FileSource()
        hits, stats = Pool(UnitScanner(source, engine), 2).run(tasks, pytest.fail)
        findings = source.findings(hits, stats, pytest.fail)
    got = {(f.location.path, f.match.offset, f.match.line, f.secret_sha256) for f in findings}
    assert got == want
    assert stats.files == len(paths)


@pytest.fixture(scope="module")
def blob_repo(tmp_path_factory: pytest.TempPathFactory) -> Repo:
    home = tmp_path_factory.mktemp("home")
    return Repo.init(home / "repo", home)


EXAMPLE = itertools.count()
"""Makes every example's blobs new ones, even when hypothesis replays an example."""
SIZES = st.one_of(
    st.integers(MIB - 64, MIB + 64),  # around the engine's chunk: tokens cut by the boundary
    st.integers(2 * MIB - 130, 2 * MIB + 10),
    st.integers(1, 4096),
)


@settings(
    max_examples=8,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
@given(
    blobs=st.lists(
        st.tuples(SIZES, st.lists(st.floats(0, 1), min_size=0, max_size=3), st.integers(0, 2**32)),
        min_size=1,
        max_size=3,
    ),
    near_the_end=st.booleans(),
    jobs=st.sampled_from([1, 2]),
)
def test_planted_tokens_found_in_git_blobs_around_one_mib(blob_repo: Repo, blobs, near_the_end, jobs) -> None:
    """Blobs of hypothesis-chosen sizes around 1 MiB, through ``git cat-file --batch`` and the pool."""
    want = set()
    names = {}
    for n, (size, wheres, seed) in enumerate(blobs):
        rnd = random.Random(seed)
        placed = []
        for where in sorted(wheres):
            fmt = rnd.choice(rules.FORMATS)
            token = fmt.mint().encode()
            offset = int(where * max(size - len(token), 0))
            if near_the_end:
                offset = max(size - len(token) - rnd.randrange(0, 8), 0)
            if any(abs(offset - o) < 45 for o, _ in placed):
                continue
            placed.append((offset, token))
        end = max([size, *(o + len(t) for o, t in placed)]) + 10
        for i, kind in enumerate(LOOKALIKES):  # never reported
            placed.append((end + 50 * i, lookalike(kind, rules.API_KEY.mint(), rnd)))
        data = plant(end + 50 * len(LOOKALIKES), placed, seed)
        name = f"blob{n}-{rnd.getrandbits(64):x}-{next(EXAMPLE)}.bin"
        names[name] = data
        for offset, token in placed:
            if rules.recognise(token.decode("latin-1")) is not None:
                want.add((name, offset, expected_line(data, offset), rules.identity(token)))
    commit = blob_repo.commit({k: v + b"\n%d" % next(EXAMPLE) for k, v in names.items()}, "blobs")
    history = HistorySource(open_repo(str(blob_repo.path)), jobs=jobs)
    findings, _ = scan([history], Engine(), jobs=jobs, warn=pytest.fail)
    mine = {f for f in findings if f.location.path.decode() in names}
    got = {(f.location.path.decode(), f.match.offset, f.match.line, f.secret_sha256) for f in mine}
    assert got == want
    assert all(f.location.commit == commit for f in mine)


# --- damaged repositories ----------------------------------------------------------------------


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.init(tmp_path / "repo", tmp_path)


def two_keys(repo: Repo, *, pack: bool = False) -> tuple[str, str, str]:
    """Commits ``kept.txt`` and ``lost.txt``, each with a key; then a clean second commit."""
    kept, lost = rules.API_KEY.mint(), rules.API_KEY.mint()
    first = repo.commit({"kept.txt": f"{kept}\n", "lost.txt": f"x\n{lost}\n"}, "keys")
    repo.commit({"other.txt": "clean\n"}, "clean")
    if pack:
        repo.git("repack", "-q", "-a", "-d")
    return kept, lost, first


def overwrite_loose(repo: Repo, oid: str, data: bytes) -> None:
    path = repo.path / ".git" / "objects" / oid[:2] / oid[2:]
    path.chmod(0o644)
    path.write_bytes(data)


def one_line_error(run: Run) -> None:
    assert run.code == 2
    errors = [line for line in run.stderr.splitlines() if "error:" in line]
    assert len(errors) == 1 and errors[0].startswith("soundpiece-scan: error: ")
    assert run.stdout == b""


def test_corrupt_loose_blob_is_a_warning_with_partial_results(repo: Repo) -> None:
    kept, _lost, first = two_keys(repo)
    overwrite_loose(repo, repo.git("rev-parse", "HEAD:lost.txt"), os.urandom(64))  # not zlib

    run = cli("--git", ".", cwd=repo.path)

    assert run.code == 1, run.stderr
    assert [(f["path"], f["commit"], f["secret_sha256"]) for f in run.doc["findings"]] == [
        ("kept.txt", first, rules.identity(kept))
    ]
    assert any("could not be read" in w for w in run.warnings), run.stderr


def test_corrupt_tip_commit_still_reports_every_credential(repo: Repo) -> None:
    """The only ref names a commit of garbage: blobs are still scanned; findings are kept, by blob id."""
    kept, lost, _ = two_keys(repo)
    overwrite_loose(repo, repo.git("rev-parse", "HEAD"), os.urandom(64))

    run = cli("--git", ".", cwd=repo.path)

    assert run.code == 1, run.stderr
    assert {f["secret_sha256"] for f in run.doc["findings"]} == {rules.identity(kept), rules.identity(lost)}
    assert any("reported by blob id" in w for w in run.warnings), run.stderr


def test_damaged_pack_entry_is_a_warning_with_partial_results(repo: Repo) -> None:
    keys = [rules.API_KEY.mint() for _ in range(6)]
    for i, key in enumerate(keys):
        repo.commit({f"k{i}.txt": f"{os.urandom(3000).hex()}\n{key}\n"}, f"k{i}")
    repo.git("repack", "-q", "-a", "-d", "--window=0")  # no deltas: one damaged entry, one lost blob
    [pack] = (repo.path / ".git" / "objects" / "pack").glob("*.pack")
    pack.chmod(0o644)
    data = bytearray(pack.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    pack.write_bytes(bytes(data))

    run = cli("--git", ".", cwd=repo.path)

    assert run.code == 1, run.stderr
    found = {f["secret_sha256"] for f in run.doc["findings"]}
    assert found < {rules.identity(k) for k in keys} and len(found) >= len(keys) - 2
    assert run.warnings


@pytest.mark.parametrize("damage", ["idx_missing", "idx_garbage", "idx_truncated"])
def test_pack_index_missing_or_corrupt_is_an_error_not_a_clean_scan(repo: Repo, damage: str) -> None:
    """Every object lives in a pack git cannot index: nothing can be read, so no 'clean' exit 0."""
    two_keys(repo, pack=True)
    [idx] = (repo.path / ".git" / "objects" / "pack").glob("*.idx")
    idx.chmod(0o644)
    if damage == "idx_missing":
        idx.unlink()
    elif damage == "idx_garbage":
        idx.write_bytes(os.urandom(idx.stat().st_size))
    else:
        idx.write_bytes(idx.read_bytes()[:100])

    run = cli("--git", ".", cwd=repo.path)

    one_line_error(run)


def test_garbage_head_is_a_one_line_error(repo: Repo) -> None:
    two_keys(repo)
    (repo.path / ".git" / "HEAD").write_text("this is not a ref\n")
    one_line_error(cli("--git", ".", cwd=repo.path))


def test_head_naming_a_missing_commit_still_scans_the_branches(repo: Repo) -> None:
    kept, lost, first = two_keys(repo)
    (repo.path / ".git" / "HEAD").write_text("0123456789" * 4 + "\n")  # detached, at nothing

    run = cli("--git", ".", cwd=repo.path)

    assert run.code == 1, run.stderr
    assert {(f["commit"], f["secret_sha256"]) for f in run.doc["findings"]} == {
        (first, rules.identity(kept)),
        (first, rules.identity(lost)),
    }
    assert "HEAD" in run.stderr


def test_detached_head_commit_on_no_branch_is_scanned_and_attributed(repo: Repo) -> None:
    two_keys(repo)
    repo.git("checkout", "-q", "--detach")
    key = rules.WEBHOOK_SECRET.mint()
    detached = repo.commit({"d.txt": f"a\nb\n{key}\n"}, "detached")

    run = cli("--git", ".", cwd=repo.path)

    assert run.code == 1, run.stderr
    [f] = [f for f in run.doc["findings"] if f["secret_sha256"] == rules.identity(key)]
    assert (f["commit"], f["path"], f["line"]) == (detached, "d.txt", 3)


def test_range_over_a_corrupt_blob_fails_closed(repo: Repo) -> None:
    """--range (CI gate) cannot diff a corrupt blob: exit 2 with git's reason, never a clean 0."""
    repo.commit({"a.txt": "a\n"}, "base")
    repo.commit({"k.txt": f"{rules.API_KEY.mint()}\n", "l.txt": f"{rules.API_KEY.mint()}\n"}, "keys")
    overwrite_loose(repo, repo.git("rev-parse", "HEAD:l.txt"), os.urandom(40))

    one_line_error(cli("--git", ".", "--range", "HEAD~1..HEAD", cwd=repo.path))


def test_unreadable_objects_directory_fails_closed(repo: Repo) -> None:
    """Without the privilege to override modes (root included), no object can be read: exit 2 with
    one line, never a clean 0 or a partial 1."""
    two_keys(repo)
    objects = repo.path / ".git" / "objects"
    objects.chmod(0)
    try:
        run = cli("--git", ".", cwd=repo.path, privileged=False)
    finally:
        objects.chmod(0o755)
    one_line_error(run)
    assert "soundpiece-scan: error: .: " in run.stderr, run.stderr


# --- hostile trees ------------------------------------------------------------------------------


def test_fifo_swapped_in_after_the_walk_never_blocks(tmp_path: Path) -> None:
    """The walk listed a file; by the time it is read it is a FIFO with a silent writer."""
    fifo = tmp_path / "was-a-file"
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)  # a writer that never writes: a blocking read would hang
    messages: list[str] = []
    result: list[tuple] = []
    scanning = threading.Thread(
        target=lambda: result.append(
            scan([FileSource.listed([os.fsencode(fifo)])], Engine(), warn=messages.append)
        )
    )
    try:
        scanning.start()
        scanning.join(HANG_GUARD)
        assert not scanning.is_alive(), (
            "the scan blocked on the FIFO (it returned only once the writer closed)"
        )
    finally:
        os.close(writer)  # ends a blocked read, so a failing run does not leave the thread behind
        scanning.join()
    [(findings, stats)] = result
    assert findings == []
    assert stats.files + stats.skipped == 1


def hostile_tree(root: Path, files: int) -> list[str]:
    """Many files under names with newlines, invalid UTF-8 and escapes; symlink loops; FIFOs."""
    keys = []
    odd = [b"new\nline", b"\xff\xfe-latin1-\xe9", b"tab\tand\rcr", b"\x1b[31mred", b"-rf", b"back\\slash"]
    base = os.fsencode(root)
    for d in range(12):
        directory = os.path.join(base, odd[d % len(odd)] + b"-%d" % d)
        os.makedirs(os.path.join(directory, b"inner\n" + odd[(d + 1) % len(odd)]))
        os.symlink(b"..", os.path.join(directory, b"loop-up"))
        os.symlink(b".", os.path.join(directory, b"loop-self"))
        os.symlink(os.path.join(directory, b"a"), os.path.join(directory, b"b"))  # b -> a -> b
        os.symlink(os.path.join(directory, b"b"), os.path.join(directory, b"a"))
        os.mkfifo(os.path.join(directory, b"fifo\n"))
        for i in range(files // 12):
            sub = directory if i % 2 else os.path.join(directory, b"inner\n" + odd[(d + 1) % len(odd)])
            name = os.path.join(sub, odd[i % len(odd)] + b"%d.txt" % i)
            content = b"nothing here\n"
            if i % 50 == 0:
                key = rules.API_KEY.mint()
                keys.append(key)
                content += key.encode() + b"\n"
            with open(name, "wb") as f:
                f.write(content)
    return keys


def test_hostile_tree_through_the_pool_no_hang_no_crash_bounded_memory(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    keys = hostile_tree(tree, files=1200)

    run = cli_measured("-j", "2", ".", cwd=tree)

    assert run.code == 1, run.stderr
    assert {f["secret_sha256"] for f in run.doc["findings"]} == {rules.identity(k) for k in keys}
    assert all(f["line"] == 2 for f in run.doc["findings"])
    # One plain line per warning, whatever the name holds (a newline, an escape sequence).
    lines = run.stderr.splitlines()
    assert len(lines) == 12 and all(w.endswith("skipped, not a regular file (FIFO)") for w in lines), lines
    assert "\x1b" not in run.stderr
    # The bound covers the scanner and both pool workers: wait4's peak spans every process it reaped.
    assert 0 < run.peak.reaped_max_kb < 150 * 1024, run.peak
    assert run.peak.mib < 150, run.peak


def test_files_deleted_while_the_pool_scans(tmp_path: Path) -> None:
    """Files the walk listed vanish before a worker opens them: each is one warning, the rest is
    scanned, and the test proves that files did vanish mid-scan (not before it, not after)."""
    tree = tmp_path / "tree"
    tree.mkdir()
    doomed = [tree / f"doomed-{i:04d}.txt" for i in range(3000)]
    for path in doomed:
        path.write_text("x\n" * 200)
    key = rules.API_KEY.mint()
    (tree / "kept.txt").write_text(f"{key}\n")
    deleting: list[threading.Thread] = []

    def delete_once_the_pool_runs(pid: int) -> None:
        # The pool starts only after the walk has listed a batch of files: from then on, files are
        # deleted while the walk lists and the workers read.
        def delete() -> None:
            wait_for(lambda: len(process_tree(pid)) > 1, HANG_GUARD, interval=0.001, what="the pool")
            for path in random.Random(7).sample(doomed, len(doomed)):
                path.unlink()

        deleting.append(threading.Thread(target=delete))
        deleting[0].start()

    try:
        run = cli("-j", "2", ".", cwd=tree, on_start=delete_once_the_pool_runs)
    finally:
        for thread in deleting:
            thread.join()
    assert run.code == 1, run.stderr
    assert [f["secret_sha256"] for f in run.doc["findings"]] == [rules.identity(key)]
    assert not any(path.exists() for path in doomed)  # the deleter ran to the end
    vanished = [w.removeprefix("soundpiece-scan: warning: ./") for w in run.stderr.splitlines()]
    names = [w.removesuffix(": skipped: No such file or directory") for w in vanished]
    assert all(name.startswith("doomed-") and name.endswith(".txt") for name in names), vanished
    assert len(set(names)) == len(names) >= 1, "no file vanished between the walk and its read"
    stats = run.doc["stats"]
    assert stats["skipped"] == len(names)
    assert stats["files"] >= 1 and stats["files"] + stats["skipped"] <= 3001
    print(f"{len(names)} of 3,000 files vanished after the walk listed them; {stats['files']} were read")


CAP = 2 * GIB
WRITER = """
import os, sys, time
path, cap = sys.argv[1], int(sys.argv[2])
block = b"appended line\\n" * 65536  # about 1 MiB
fd = os.open(path, os.O_WRONLY | os.O_APPEND)
print("started", flush=True)
while os.fstat(fd).st_size < cap:  # about 100 MB/s, for longer than the test takes
    os.write(fd, block)
    time.sleep(0.01)
time.sleep(120)
"""


def test_file_growing_while_scanned_ends_at_its_size_after_the_first_chunk(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A process appends without pause while the scan runs: the scan still ends, and it reads at
    most the size the file had when its first full chunk was read (in process: the bound is known)."""
    key = rules.API_KEY.mint()
    path = tmp_path / "growing.log"
    path.write_bytes(b"start\n" + key.encode() + b"\n" + b"line\n" * (2 * MIB))
    sizes: list[int] = []
    real_open = file_source.open_reader

    def recording_open(p: bytes):
        fd, reader = real_open(p)

        def readinto(view: memoryview) -> int:
            n = reader(view)
            if not sizes and n == len(view):  # the reader took the size just before this
                sizes.append(os.fstat(fd).st_size)
            return n

        return fd, readinto

    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(path), str(CAP)], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "started\n"
        monkeypatch.setattr(file_source, "open_reader", recording_open)
        findings, stats = scan([FileSource.listed([os.fsencode(path)])], Engine(), warn=pytest.fail)
        monkeypatch.undo()
        # And the CLI, with its own reader, also ends while the writer keeps writing.
        run = cli(str(path), cwd=tmp_path)
        size_now = path.stat().st_size
    finally:
        writer.kill()
        writer.wait()
        path.unlink()
    assert [f.match.secret.decode() for f in findings] == [key]
    assert stats.bytes <= sizes[0]
    assert run.code == 1 and [f["line"] for f in run.doc["findings"]] == [2]
    assert size_now < CAP, "the writer stopped before the scans ended: the test proves nothing"
    # The writer may be between two writes when the scan ends: equal sizes are fine; the
    # scan never reads past what the file held when it finished (the bound was taken earlier).
    assert run.doc["stats"]["bytes"] <= size_now


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    size=st.integers(64 * 1024, 6 * MIB),
    writes=st.lists(
        st.tuples(st.floats(0, 1), st.sampled_from(["token", "lines", "utf8", *LOOKALIKES])), max_size=8
    ),
    chunk=st.sampled_from([44, 1000, 4096, 65536, MIB]),
    seed=st.integers(0, 2**32),
)
def test_sparse_files_with_data_between_holes_exact_offsets_lines_columns(size, writes, chunk, seed) -> None:
    """Holes are produced as zeros without reading them: findings must equal those of the same bytes
    read in full (offsets, lines, columns), whatever the chunk size and however data and holes mix."""
    import tempfile

    rnd = random.Random(seed)
    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "sparse.img")
        with open(path, "wb"):
            pass
        os.truncate(path, size)
        fd = os.open(path, os.O_RDWR)
        try:
            for where, kind in writes:
                if kind == "token":
                    data = rnd.choice(rules.FORMATS).mint().encode()
                elif kind == "lines":
                    data = b"line\n" * rnd.randrange(1, 5000)
                elif kind == "utf8":
                    data = "é€\n".encode() * rnd.randrange(1, 100) + b"\xff"
                else:
                    data = lookalike(kind, rules.API_KEY.mint(), rnd)
                os.pwrite(fd, data, min(int(where * size), size - len(data)))
            content = os.pread(fd, size + 1, 0)
        finally:
            os.close(fd)
        source = FileSource.listed([os.fsencode(path)])
        findings, _ = scan([source], Engine(chunk_size=chunk), warn=pytest.fail)
    want = [
        (m.offset, m.line, m.column, m.secret)
        for m in Engine(chunk_size=chunk).scan(bytes_reader(content))[0]
    ]
    assert sorted((f.match.offset, f.match.line, f.match.column, f.match.secret) for f in findings) == want


@pytest.mark.slow
def test_ten_gib_sparse_file_found_at_line_one_without_reading_its_holes(tmp_path: Path) -> None:
    """Holes are produced as zeros, not read: the scanner reads (``rchar``) a tiny part of the 10 GiB,
    where reading them made the kernel zero-fill page after page for a minute. Memory stays bounded."""
    size = 10 * GIB
    assert shutil.disk_usage(tmp_path).free >= 64 * MIB, "no free space even for a sparse file's metadata"
    path = tmp_path / "sparse.img"
    with path.open("wb"):
        pass
    os.truncate(path, size)
    assert path.stat().st_blocks * 512 < MIB, f"the file system of {tmp_path} does not support sparse files"
    key = rules.API_KEY.mint()
    offset = size - 1000
    fd = os.open(path, os.O_WRONLY)
    try:
        os.pwrite(fd, key.encode(), offset)
    finally:
        os.close(fd)

    run = cli_measured(str(path), cwd=tmp_path)
    path.unlink()

    assert run.code == 1, run.stderr
    [f] = run.doc["findings"]
    assert (f["line"], f["column"], f["offset"], f["secret_sha256"]) == (
        1,
        offset + 1,
        offset,
        rules.identity(key),
    )
    assert run.doc["stats"]["bytes"] == size
    assert run.peak.mib < 150, run.peak
    read = sum(run.peak.read_bytes.values())
    assert 0 < read < 256 * MIB, read  # the interpreter's own files and one page of data, not 10 GiB
    print(f"10 GiB sparse: {run.seconds:.1f} s, {read / MIB:.0f} MiB read, peak {run.peak.mib:.0f} MiB")
