"""``soundpiece-scan --git``: every blob reachable from every ref, once, attributed to its first commit."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

import rules
from scanner.stats import ScanStats
from tests.support.git import Repo, git, run_scan


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.init(tmp_path / "repo", tmp_path)


def by_secret(findings: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for f in findings:
        out.setdefault(f["secret_sha256"], []).append(f)
    return out


def test_finding_attributed_to_the_introducing_commit(repo: Repo) -> None:
    key, secret = rules.API_KEY.mint(), rules.WEBHOOK_SECRET.mint()
    repo.commit({"README": "hello\n"}, "first")
    introduced = repo.commit(
        {"app/config.py": f"# settings\n\nKEY = '{key}'\n"},
        "add key",
        author=("Bea Dev", "bea@example.com"),
    )
    # Later commits keep the same blob (unchanged) and copy it to a second path: still one report.
    repo.commit({"other.txt": "x\n"}, "unrelated")
    repo.commit({"copy/config.py": f"# settings\n\nKEY = '{key}'\n"}, "copy")
    second = repo.commit({"hooks.env": f"A=1\nB=2\nWEBHOOK={secret}\n"}, "secret")

    result = run_scan("--git", ".", cwd=repo.path)

    assert result.code == 1, result.stderr
    found = by_secret(result.findings)
    assert set(found) == {rules.identity(key), rules.identity(secret)}
    [k] = found[rules.identity(key)]
    assert k["type"] == "soundpiece_api_key"
    assert (k["commit"], k["path"], k["line"], k["column"]) == (introduced, "app/config.py", 3, 8)
    assert k["author"] == {"name": "Bea Dev", "email": "bea@example.com"}
    # The author date of the second commit (EPOCH + 2 min) in the author's zone, not the committer's
    # (2023-11-14T16:15:21-07:00): "date" goes with "author".
    assert k["date"] == "2023-11-15T03:45:20+05:30"
    assert len(k["blob"]) == 40
    assert key not in result.stdout
    [s] = found[rules.identity(secret)]
    assert (s["commit"], s["path"], s["line"]) == (second, "hooks.env", 3)
    assert s["type"] == "soundpiece_webhook_secret"
    assert s["author"] == {"name": "Ada Author", "email": "ada@example.com"}


def test_same_blob_in_many_commits_reported_once_at_oldest(repo: Repo) -> None:
    key = rules.API_KEY.mint()
    content = f"key={key}\n"
    repo.commit({"a.txt": "nothing\n"}, "base")
    first = repo.commit({"a.txt": content}, "add")
    repo.commit({"a.txt": "removed\n"}, "remove")
    repo.commit({"a.txt": content}, "re-add the same blob")
    repo.commit({"b/a.txt": content}, "same blob, another path")

    result = run_scan("--git", str(repo.path), cwd=repo.path.parent)

    assert result.code == 1
    [f] = result.findings
    assert (f["commit"], f["path"], f["line"]) == (first, "a.txt", 1)


def test_clean_history_exits_zero(repo: Repo) -> None:
    repo.commit({"a.txt": "spk_<your-key>\nspk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdM\n"}, "placeholders")
    result = run_scan("--git", cwd=repo.path)
    assert (result.code, result.findings) == (0, [])


def test_every_kind_of_ref_is_scanned(tmp_path: Path, repo: Repo) -> None:
    keys = {name: rules.API_KEY.mint() for name in ("tag", "remote", "stash", "detached", "branch")}
    base = repo.commit({"base.txt": "base\n"}, "base")

    # A history reachable only from a tag: its branch was deleted.
    repo.git("checkout", "-q", "-b", "tagged")
    tagged = repo.commit({"tag.txt": keys["tag"]}, "tagged")
    repo.git("tag", "-a", "-m", "release", "v1")
    repo.git("checkout", "-q", "main")
    repo.git("branch", "-D", "tagged")

    # A remote-tracking ref only: fetched from another repository, never checked out.
    other = Repo.init(tmp_path / "other", tmp_path)
    remote = other.commit({"remote.txt": keys["remote"]}, "remote")
    repo.git("remote", "add", "origin", str(other.path))
    repo.git("fetch", "-q", "origin")

    # A stash.
    repo.write("base.txt", f"base\n{keys['stash']}\n")
    repo.git("stash", "-q")

    # A detached HEAD whose commit is on no branch.
    repo.git("checkout", "-q", "--detach", base)
    detached = repo.commit({"detached.txt": keys["detached"]}, "detached")

    # An ordinary branch, for comparison (HEAD stays detached).
    repo.git("branch", "feature", base)
    repo.git("checkout", "-q", "feature")
    branch = repo.commit({"branch.txt": keys["branch"]}, "branch")
    repo.git("checkout", "-q", "--detach", detached)

    result = run_scan("--git", cwd=repo.path)

    assert result.code == 1, result.stderr
    found = by_secret(result.findings)
    assert {k: len(found.get(rules.identity(v), [])) for k, v in keys.items()} == dict.fromkeys(keys, 1)
    assert found[rules.identity(keys["tag"])][0]["commit"] == tagged
    assert found[rules.identity(keys["remote"])][0]["commit"] == remote
    assert found[rules.identity(keys["detached"])][0]["commit"] == detached
    assert found[rules.identity(keys["branch"])][0]["commit"] == branch
    stash = found[rules.identity(keys["stash"])][0]
    assert stash["path"] == "base.txt" and stash["line"] == 2
    assert stash["commit"] == repo.git("rev-parse", "refs/stash")
    assert "not reachable" not in result.stderr


@pytest.mark.parametrize("kind", ["--bare", "--mirror"])
def test_bare_and_mirror_clones(tmp_path: Path, repo: Repo, kind: str) -> None:
    key = rules.WEBHOOK_SECRET.mint()
    repo.commit({"a": "1\n"}, "one")
    introduced = repo.commit({"dir/s.env": f"\n\nS={key}\n"}, "two")
    clone = tmp_path / "clone.git"
    git(tmp_path, "clone", "-q", kind, str(repo.path), str(clone))

    result = run_scan("--git", str(clone), cwd=tmp_path)

    assert result.code == 1, result.stderr
    [f] = result.findings
    assert (f["commit"], f["path"], f["line"]) == (introduced, "dir/s.env", 3)


def test_large_blob_with_token_across_the_chunk_boundary(repo: Repo) -> None:
    key = rules.API_KEY.mint()
    line = b"x" * 99 + b"\n"  # 100-byte lines
    head = line * ((1 << 20) // 100)  # 10485 lines, 1,048,500 bytes
    pad = b"y" * ((1 << 20) - len(head) - 20)  # the token starts 20 bytes before 1 MiB
    data = head + pad + key.encode() + b"\n" + line * 20_000  # about 3 MB
    assert len(data) > 3_000_000
    introduced = repo.commit({"big.txt": data}, "big")

    result = run_scan("--git", cwd=repo.path)

    assert result.code == 1
    [f] = result.findings
    assert (f["commit"], f["path"]) == (introduced, "big.txt")
    assert f["line"] == (1 << 20) // 100 + 1
    assert f["column"] == len(pad) + 1
    assert f["secret_sha256"] == rules.identity(key)


def test_a_blob_read_again_in_part_ends_its_git(repo: Repo) -> None:
    """The second pass for line numbers stops at its last match: the ``git cat-file blob`` behind it
    must end then, not wait on a full pipe, holding the blob, until the scan is over."""
    from scanner.sources.git.objects import blob_reader
    from scanner.sources.git.repo import open_repo

    repo.commit({"big.txt": b"z" * (4 << 20)}, "big")
    oid = git(repo.path, "rev-parse", "HEAD:big.txt").strip()
    reader = blob_reader(open_repo(str(repo.path)), oid)
    assert reader(memoryview(bytearray(1 << 16))) > 0
    assert _children_naming(oid)
    del reader
    assert not _children_naming(oid)


def _children_naming(word: str) -> list[int]:
    """This process's children (alive or not yet reaped) whose command line has ``word``."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if int(stat.rsplit(")", 1)[1].split()[1]) == os.getpid() and word.encode() in cmdline:
            found.append(int(pid))
    return found


def test_one_reader_reads_run_after_run_past_a_full_pipe(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process keeps its ``git cat-file`` from run to run; a run's names may not fit in the pipe at
    once (here a pipe of 64 KiB, names of 123 KB): they go in as git takes them, and nothing hangs.
    A name the database lacks is counted for its run, and the next run reads on."""
    from scanner.sources.git import objects
    from scanner.sources.git.repo import open_repo

    monkeypatch.setattr(objects, "_widen_pipe", lambda stream: None)
    for i in range(3000):
        repo.write(f"d{i // 100}/f{i}.txt", f"{i}\n")
    repo.git("add", ".")
    repo.commit(None, "many")
    listed = repo.git("ls-tree", "-r", "HEAD").splitlines()
    oids = {line.split()[2]: line.split("\t")[1] for line in listed}
    names = sorted(oids)
    absent = "0123456789abcdef" * 2 + "01234567"
    stream = objects.BlobStream(open_repo(str(repo.path)))
    try:
        for run in (names[:2800], [absent, *names[2800:]]):
            for oid, size, readinto in stream.blobs(run):
                data = bytearray(size)
                assert readinto(memoryview(data)) == size
                assert data.decode() == oids[oid].rsplit("f", 1)[1].removesuffix(".txt") + "\n"
            assert not stream.broken
        assert stream.missing == [absent]
    finally:
        assert stream.close() == ""


def test_attribution_walk_in_slices_finds_what_one_walk_finds(
    repo: Repo, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The walk cut into slices of the commit order, side by side, gives each blob the commit that one
    walk gives it, whatever the number of slices and however far off the count of commits is."""
    from scanner.sources.git import attribution
    from scanner.sources.git.repo import open_repo

    contents = [f"blob {i}\n" for i in range(8)]
    repo.commit({"base.txt": "base\n"}, "base")
    for i in range(12):  # blobs come, go and come back at other paths
        repo.commit({f"f{i % 4}.txt": contents[i % 8]}, f"main {i}")
    repo.git("checkout", "-q", "-b", "side", "HEAD~6")
    for i in range(6):
        gone = None if i % 2 else "x\n"  # added and deleted in turn
        repo.commit({f"side{i % 3}.txt": contents[(i * 3) % 8], "gone.txt": gone}, f"side {i}")
    repo.git("checkout", "-q", "main")
    repo.git("merge", "-q", "--no-ff", "-m", "merge", "side")
    repo.commit({"late.txt": contents[7]}, "late")
    opened = open_repo(str(repo.path))
    oids = {git(repo.path, "hash-object", "--stdin", input=c.encode()).strip() for c in contents}
    one = attribution.first_appearances(opened, oids, ["--all"])
    assert set(one) == oids
    monkeypatch.setattr(attribution, "SLICE_COMMITS", 1)
    total = int(repo.git("rev-list", "--all", "--count"))
    for parts in (2, 3, 5):
        for commits in (total, 3, total * 4):
            assert attribution.first_appearances(opened, oids, ["--all"], commits=commits, parts=parts) == one


def test_jobs_one_and_two_give_identical_findings(repo: Repo) -> None:
    keys = [rules.API_KEY.mint() for _ in range(12)]
    # Many blobs of some size: with --jobs 2 there are several runs, so the pool is used.
    files: dict[str, str | bytes | None] = {f"f{i:03}.txt": f"{i}\n" * (500 + i) for i in range(60)}
    repo.commit(files, "many")
    for i, key in enumerate(keys):
        repo.commit({f"k{i}.txt": "pad\n" * (100 * i) + f"KEY={key}\n"}, f"key {i}")

    one = run_scan("--git", "--jobs", "1", cwd=repo.path)
    two = run_scan("--git", "--jobs", "2", cwd=repo.path)

    assert one.code == two.code == 1
    assert one.findings == two.findings
    assert {f["secret_sha256"] for f in two.findings} == {rules.identity(k) for k in keys}
    assert sorted(f["line"] for f in two.findings) == [100 * i + 1 for i in range(12)]


def test_history_api_uses_more_than_one_run(repo: Repo) -> None:
    """The pool path really runs: scan_history with jobs=2 splits into several runs."""
    from scanner.engine import Engine
    from scanner.run import scan
    from scanner.sources.git import history
    from scanner.sources.git.objects import list_blobs, split_runs
    from scanner.sources.git.repo import open_repo

    keys = [rules.API_KEY.mint() for _ in range(5)]
    repo.commit({f"k{i}.txt": f"{'z' * 1000 * i}\n{k}\n" for i, k in enumerate(keys)}, "keys")
    opened = open_repo(str(repo.path))
    assert len(split_runs(list_blobs(opened), 2)) > 1
    warnings: list[str] = []
    findings, stats = scan([history.HistorySource(opened, jobs=2)], Engine(), jobs=2, warn=warnings.append)
    assert {f.secret_sha256 for f in findings} == {rules.identity(k) for k in keys}
    assert stats.files == 5
    assert warnings == []


def test_a_scan_here_ends_the_git_it_read_with(repo: Repo) -> None:
    """Scanned in this process (one job), the reader kept from run to run ends with the scan."""
    from scanner.engine import Engine
    from scanner.run import scan
    from scanner.sources.git import history
    from scanner.sources.git.repo import open_repo

    key = rules.API_KEY.mint()
    repo.commit({f"f{i}.txt": f"{i}\n" * 500 for i in range(20)} | {"k.txt": key}, "files")
    findings, stats = scan(
        [history.HistorySource(open_repo(str(repo.path)), jobs=1)], Engine(), warn=pytest.fail
    )
    assert [f.secret_sha256 for f in findings] == [rules.identity(key)] and stats.files == 21
    assert not _children_naming("--batch")


def test_every_worker_ends_its_reader(repo: Repo, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each worker process ends the ``git cat-file`` it kept, after its last run, before it reports."""
    from scanner.engine import Engine
    from scanner.run import scan
    from scanner.sources.git import history
    from scanner.sources.git.repo import open_repo

    ended = tmp_path / "ended"
    finish = history.HistorySource.finish

    def recorded(self: history.HistorySource, stats: ScanStats, warn: Callable[[str], None]) -> None:
        with ended.open("a") as out:
            out.write(f"{os.getpid()}\n")
        finish(self, stats, warn)

    monkeypatch.setattr(history.HistorySource, "finish", recorded)
    repo.commit({f"f{i}.txt": f"{i}\n" * (500 + i) for i in range(40)}, "files")
    scan([history.HistorySource(open_repo(str(repo.path)), jobs=2)], Engine(), jobs=2, warn=pytest.fail)
    lines = ended.read_text().splitlines()
    assert len(set(lines)) == len(lines) == 2 and str(os.getpid()) not in lines


# --- bad input ---------------------------------------------------------------------------------------


def test_not_a_repository(tmp_path: Path) -> None:
    (tmp_path / "plain").mkdir()
    result = run_scan("--git", str(tmp_path / "plain"), cwd=tmp_path)
    assert result.code == 2
    assert len(result.stderr.strip().splitlines()) == 1
    assert "not a git repository" in result.stderr
    missing = run_scan("--git", str(tmp_path / "nope"), cwd=tmp_path)
    assert missing.code == 2 and len(missing.stderr.strip().splitlines()) == 1


def test_a_path_after_git_is_the_repository(tmp_path: Path, repo: Repo) -> None:
    """``--git --format json REPO``: argparse leaves REPO a PATH; it is obviously the repository."""
    key = rules.API_KEY.mint()
    first = repo.commit({"k.txt": f"{key}\n"}, "key")
    result = run_scan("--git", "--format", "json", str(repo.path), cwd=tmp_path)
    assert result.code == 1, result.stderr
    assert [(f["commit"], f["path"], f["secret_sha256"]) for f in result.findings] == [
        (first, "k.txt", rules.identity(key))
    ]
    for args in (["--git", str(repo.path), str(repo.path)], ["--git", "--format", "json", "a", "b"]):
        refused = run_scan(*args, cwd=tmp_path)
        assert refused.code == 2 and "one repository" in refused.stderr, refused.stderr
        assert len(refused.stderr.strip().splitlines()) == 1


def test_repository_without_commits(repo: Repo) -> None:
    result = run_scan("--git", cwd=repo.path)
    assert (result.code, result.findings) == (0, [])


def test_shallow_clone_warns_and_scans(tmp_path: Path, repo: Repo) -> None:
    old, new = rules.API_KEY.mint(), rules.API_KEY.mint()
    repo.commit({"old.txt": old}, "old")
    repo.commit({"old.txt": "gone\n"}, "old gone")
    repo.commit({"new.txt": new}, "new")
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clone))

    result = run_scan("--git", cwd=clone)

    assert result.code == 1
    assert "shallow" in result.stderr
    assert {f["secret_sha256"] for f in result.findings} == {rules.identity(new)}

    clean = tmp_path / "clean"
    repo.commit({"new.txt": "clean\n"}, "clean")
    git(tmp_path, "clone", "-q", "--depth", "1", f"file://{repo.path}", str(clean))
    result = run_scan("--git", cwd=clean)
    assert result.code == 0 and "shallow" in result.stderr


def _loose_object(repo: Repo, oid: str) -> Path:
    return repo.path / ".git" / "objects" / oid[:2] / oid[2:]


def test_missing_loose_object_gives_partial_results(repo: Repo) -> None:
    kept, lost = rules.API_KEY.mint(), rules.API_KEY.mint()
    repo.commit({"kept.txt": kept, "lost.txt": lost}, "two keys")
    oid = repo.git("rev-parse", "HEAD:lost.txt")
    _loose_object(repo, oid).unlink()

    result = run_scan("--git", cwd=repo.path)

    assert result.code == 1, result.stderr
    assert {f["secret_sha256"] for f in result.findings} == {rules.identity(kept)}
    assert "warning" in result.stderr and "missing" in result.stderr


def test_truncated_pack_is_a_one_line_error(repo: Repo) -> None:
    """Git refuses a pack shorter than its index says: nothing can be read, so exit 2, never 0 or 1."""
    keys = [rules.API_KEY.mint() for _ in range(3)]
    for i, key in enumerate(keys):
        repo.commit({f"k{i}.txt": f"{os.urandom(2000).hex()}\n{key}\n"}, f"k{i}")
    repo.git("repack", "-q", "-a", "-d")
    [pack] = (repo.path / ".git" / "objects" / "pack").glob("*.pack")
    pack.chmod(0o644)
    with pack.open("r+b") as f:
        f.truncate(pack.stat().st_size // 2)

    result = run_scan("--git", cwd=repo.path)

    assert (result.code, result.stdout) == (2, "")
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("soundpiece-scan: error: ") and "pack" in line, line


def test_submodule_gitlinks_and_lfs_pointers(tmp_path: Path, repo: Repo) -> None:
    key = rules.API_KEY.mint()
    sub = Repo.init(tmp_path / "sub", tmp_path)
    sub.commit({"s.txt": "sub\n"}, "sub")
    repo.commit({"a.txt": "a\n"}, "a")
    repo.git("-c", "protocol.file.allow=always", "submodule", "add", "-q", str(sub.path), "vendor/sub")
    lfs = (
        "version https://git-lfs.github.com/spec/v1\n"
        "oid sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393\nsize 12345\n"
    )
    (repo.path / ".git" / "lfs").mkdir()
    introduced = repo.commit({"model.bin": lfs, ".gitattributes": "*.bin filter=lfs\n", "k.txt": key}, "sub")

    result = run_scan("--git", cwd=repo.path)

    assert result.code == 1, result.stderr
    [f] = result.findings
    assert (f["commit"], f["path"]) == (introduced, "k.txt")
    assert "LFS" in result.stderr


def test_root_commit_attributed_whatever_log_show_root(repo: Repo) -> None:
    key = rules.API_KEY.mint()
    root = repo.commit({"root.txt": f"{key}\n"}, "root")
    repo.commit({"x": "x\n"}, "x")
    repo.git("config", "log.showRoot", "false")

    history = run_scan("--git", cwd=repo.path)
    ranged = run_scan("--git", "--range", "HEAD", cwd=repo.path)

    assert [(f["commit"], f["path"], f["line"]) for f in history.findings] == [(root, "root.txt", 1)]
    assert [(f["commit"], f["path"], f["line"]) for f in ranged.findings] == [(root, "root.txt", 1)]
    assert "not reachable" not in history.stderr


def test_blob_named_directly_by_a_tag(repo: Repo) -> None:
    """A tag may point at a blob (git.git's junio-gpg-pub): reachable, so reported, under the ref's name."""
    light, annotated, dangling = rules.API_KEY.mint(), rules.API_KEY.mint(), rules.API_KEY.mint()
    repo.commit({"a": "a\n"}, "a")

    def blob(content: str) -> str:
        return repo.git("hash-object", "-w", "--stdin", input=content.encode())

    repo.git("tag", "key-blob", blob(f"{light}\n"))
    repo.git("tag", "-a", "-m", "signed", "key-annotated", blob(f"x\n{annotated}\n"))
    blob(dangling)

    result = run_scan("--git", cwd=repo.path)

    assert result.code == 1, result.stderr
    found = {f["secret_sha256"]: f for f in result.findings}
    assert set(found) == {rules.identity(light), rules.identity(annotated)}
    assert (found[rules.identity(light)]["path"], found[rules.identity(light)]["line"]) == (
        "refs/tags/key-blob",
        1,
    )
    assert (found[rules.identity(annotated)]["path"], found[rules.identity(annotated)]["line"]) == (
        "refs/tags/key-annotated",
        2,
    )
    assert "commit" not in found[rules.identity(light)]
    assert "1 blobs holding credentials are not reachable" in result.stderr  # the dangling one


def test_odd_paths_in_history(repo: Repo) -> None:
    names = ["tab\there.txt", "new\nline.txt", "caf\u00e9 \u65e5\u672c.txt", '"quoted".txt', "-dash.txt"]
    keys = {name: rules.API_KEY.mint() for name in names}
    for name, key in keys.items():
        repo.commit({name: f"0\n{key}\n"}, "odd")
    raw = b"bad-\xff.txt"
    binary_key = rules.API_KEY.mint()
    (repo.path / os.fsdecode(raw)).write_bytes(binary_key.encode())
    repo.git("add", "-A")
    repo.commit(message="not utf-8")

    result = run_scan("--git", cwd=repo.path)

    assert result.code == 1, result.stderr
    paths = {f["secret_sha256"]: (f["path"], f["line"]) for f in result.findings}
    assert paths == {
        **{rules.identity(key): (name, 2) for name, key in keys.items()},
        rules.identity(binary_key): ("bad-\\xff.txt", 1),
    }
    [odd] = [f for f in result.findings if f["secret_sha256"] == rules.identity(binary_key)]
    assert odd["path_base64"] == "YmFkLf8udHh0"


def test_untracked_files_in_a_stash_and_older_stash_entries(repo: Repo) -> None:
    untracked, older = rules.API_KEY.mint(), rules.API_KEY.mint()
    repo.commit({"a": "a\n"}, "a")
    repo.write("a", f"{older}\n")
    repo.git("stash", "-q")
    repo.write("new.txt", f"x\n{untracked}\n")
    repo.git("stash", "-q", "-u")  # the untracked file is kept in a parentless third commit

    result = run_scan("--git", cwd=repo.path)

    found = {f["secret_sha256"]: f for f in result.findings}
    assert (found[rules.identity(untracked)]["path"], found[rules.identity(untracked)]["line"]) == (
        "new.txt",
        2,
    )
    # stash@{1} lives only in the stash's reflog: scanned (it is in the object database) and
    # reported, or at least named in a warning, never silently dropped.
    assert rules.identity(older) in found or "not reachable" in result.stderr


def test_inline_allow_and_baseline_apply_to_history_and_staged(tmp_path: Path, repo: Repo) -> None:
    allowed, accepted, new = (rules.API_KEY.mint() for _ in range(3))
    repo.commit({"a.py": f"K = '{allowed}'  # soundpiece-scan: allow\nA = '{accepted}'\n"}, "a")
    baseline = tmp_path / "baseline.json"
    written = run_scan("--git", "--write-baseline", str(baseline), cwd=repo.path)
    assert written.code == 0
    repo.write("b.py", f"B = '{accepted}'\nN = '{new}'\nX = '{allowed}'  # soundpiece-scan: allow\n")
    repo.git("add", "b.py")

    history = run_scan("--git", "--baseline", str(baseline), cwd=repo.path)
    staged = run_scan("--staged", "--baseline", str(baseline), cwd=repo.path)
    staged_all = run_scan("--staged", cwd=repo.path)

    assert (history.code, history.findings) == (0, [])
    assert [(f["path"], f["line"]) for f in staged.findings] == [("b.py", 2)]
    assert [(f["path"], f["line"]) for f in staged_all.findings] == [("b.py", 1), ("b.py", 2)]


def test_a_killed_worker_is_an_error_not_a_hang(repo: Repo, monkeypatch: pytest.MonkeyPatch) -> None:
    """The OOM killer taking one worker must end the scan with a message, not wait forever."""
    import signal

    from scanner.engine import Engine
    from scanner.pool import WorkerDied
    from scanner.run import scan
    from scanner.sources.git import history
    from scanner.sources.git.repo import open_repo

    repo.commit({f"f{i}.txt": "x" * (1000 + i) for i in range(40)}, "many")
    scan_run = history.HistorySource.open
    parent = os.getpid()
    f0 = repo.git("rev-parse", "HEAD:f0.txt").strip()  # the worker that takes this blob dies

    def dies(self, run, stats, warn):
        if os.getpid() != parent and f0 in run:
            os.kill(os.getpid(), signal.SIGKILL)
        return scan_run(self, run, stats, warn)

    monkeypatch.setattr(history.HistorySource, "open", dies)
    source = history.HistorySource(open_repo(str(repo.path)), jobs=2)
    with pytest.raises(WorkerDied, match="died"):
        scan([source], Engine(), jobs=2, warn=lambda m: None)


def test_partial_clone_scans_what_is_there_and_says_what_is_not(tmp_path: Path, repo: Repo) -> None:
    old, new = rules.API_KEY.mint(), rules.API_KEY.mint()
    repo.commit({"old.txt": old}, "old")
    repo.commit({"old.txt": "x\n"}, "gone")
    repo.commit({"new.txt": new}, "new")
    repo.git("config", "uploadpack.allowFilter", "true")
    partial = tmp_path / "partial"
    git(tmp_path, "clone", "-q", "--filter=blob:none", f"file://{repo.path}", str(partial), env=repo.env)
    before = git(partial, "count-objects", "-v", env=repo.env)

    result = run_scan("--git", cwd=partial, env=repo.env)

    assert result.code == 1
    assert [f["path"] for f in result.findings] == ["new.txt"]
    assert "1 objects are missing" in result.stderr
    assert git(partial, "count-objects", "-v", env=repo.env) == before  # nothing was fetched

    # Offline (the promisor remote out of reach): the local blobs are still scanned and attributed.
    repo.path.rename(tmp_path / "gone")
    offline = run_scan("--git", cwd=partial, env=repo.env)
    assert offline.code == 1, offline.stderr
    assert [(f["path"], f["line"]) for f in offline.findings] == [("new.txt", 1)]


def test_a_ref_to_a_missing_commit_still_gives_attributed_findings(repo: Repo) -> None:
    key = rules.API_KEY.mint()
    introduced = repo.commit({"k.txt": key}, "k")
    repo.git("checkout", "-q", "--detach")
    detached = repo.commit({"d.txt": f"\n{key}x\n{rules.API_KEY.mint()}\n"}, "detached")
    (repo.path / ".git" / "refs" / "heads" / "broken").write_text("f" * 40 + "\n")

    result = run_scan("--git", cwd=repo.path)

    assert result.code == 1, result.stderr
    assert sorted((f["commit"], f["path"], f["line"]) for f in result.findings) == sorted(
        [(introduced, "k.txt", 1), (detached, "d.txt", 2), (detached, "d.txt", 3)]
    )
    assert "refs/heads/broken" in result.stderr


@given(
    st.lists(st.sampled_from([b"?" + b"a" * 40, b"b" * 40 + b" path", b"c" * 40, b"", b"?"]), max_size=40),
    st.lists(st.integers(min_value=1, max_value=50), min_size=1, max_size=20),
)
def test_missing_objects_are_counted_across_any_chunking(lines: list[bytes], cuts: list[int]) -> None:
    from scanner.sources.git.history import count_missing

    text = b"".join(line + b"\n" for line in lines)
    chunks, at, i = [], 0, 0
    while at < len(text):
        chunks.append(text[at : at + cuts[i % len(cuts)]])
        at += cuts[i % len(cuts)]
        i += 1
    assert count_missing(chunks) == sum(1 for line in lines if line.startswith(b"?"))


@given(
    st.lists(st.integers(min_value=0, max_value=1 << 24), max_size=300), st.integers(min_value=1, max_value=8)
)
def test_runs_keep_pack_order_shrink_and_are_bounded(sizes: list[int], jobs: int) -> None:
    from scanner.sources.git.objects import Blob, split_runs

    blobs = [Blob(f"{i:040x}", size) for i, size in enumerate(sizes)]
    runs = split_runs(blobs, jobs)
    assert [b for run in runs for b in run] == blobs and all(runs)
    assert len(runs) <= 16 * jobs + 1
    total = sum(sizes)
    for run in runs[:-1]:  # each full run reaches its share: the smallest share is 1 / 16 jobs of all
        assert sum(b.size for b in run) >= total / (16 * jobs) or total == 0
