"""``--git --range A..B`` (what a push or pull request adds) and ``--staged`` (what the next commit adds)."""

from __future__ import annotations

from pathlib import Path

import pytest

import rules
from tests.support.git import Repo, run_scan


@pytest.fixture
def repo(tmp_path: Path) -> Repo:
    return Repo.init(tmp_path / "repo", tmp_path)


# --- range ---------------------------------------------------------------------------------------------


def test_range_reports_only_what_its_commits_add(repo: Repo) -> None:
    before, added, transient = rules.API_KEY.mint(), rules.API_KEY.mint(), rules.WEBHOOK_SECRET.mint()
    repo.commit({"old.txt": f"OLD={before}\n"}, "before the range")
    a = repo.commit({"readme": "r\n"}, "A")
    with_key = repo.commit(
        {"src/new.py": f"x = 1\ny = 2\nKEY = '{added}'\n"}, "add key", author=("Eve", "e@x")
    )
    added_transient = repo.commit({"tmp.env": f"\nS={transient}\n"}, "oops")
    repo.commit({"tmp.env": None}, "remove it")
    # An edit to the file that already held the old key: only the new line counts.
    b = repo.commit({"old.txt": f"OLD={before}\nmore = 1\n"}, "B")

    result = run_scan("--git", ".", "--range", f"{a}..{b}", cwd=repo.path)

    assert result.code == 1, result.stderr
    found = {f["secret_sha256"]: f for f in result.findings}
    assert set(found) == {rules.identity(added), rules.identity(transient)}
    f = found[rules.identity(added)]
    assert (f["commit"], f["path"], f["line"], f["column"]) == (with_key, "src/new.py", 3, 8)
    assert f["author"] == {"name": "Eve", "email": "e@x"}
    assert f["date"] == "2023-11-15T03:46:20+05:30"  # the third commit's author date (EPOCH + 3 min)
    t = found[rules.identity(transient)]
    assert (t["commit"], t["path"], t["line"]) == (added_transient, "tmp.env", 2)
    assert added not in result.stdout and transient not in result.stdout

    clean = run_scan("--git", ".", "--range", f"{with_key}..{added_transient}~0^", cwd=repo.path)
    assert (clean.code, clean.findings) == (0, [])


def test_merge_of_main_into_a_branch_does_not_report_mains_keys(repo: Repo) -> None:
    main_key, branch_key, merge_key = (rules.API_KEY.mint() for _ in range(3))
    base = repo.commit({"a.txt": "a\n"}, "base")
    repo.git("checkout", "-q", "-b", "feature")
    repo.commit({"f.txt": f"F={branch_key}\n"}, "feature key")
    repo.git("checkout", "-q", "main")
    repo.commit({"m.txt": f"M={main_key}\n"}, "main key")
    repo.git("checkout", "-q", "feature")
    repo.git("merge", "-q", "--no-edit", "main")
    tip = repo.git("rev-parse", "HEAD")

    result = run_scan("--git", "--range", f"{base}..feature", cwd=repo.path)
    result_pr = run_scan("--git", "--range", f"main..{tip}", cwd=repo.path)

    assert {f["secret_sha256"] for f in result_pr.findings} == {rules.identity(branch_key)}
    # base..feature includes main's own commit (it is in the range): the merge itself adds nothing.
    assert all(f["commit"] != tip for f in result.findings)

    # An evil merge: the merge commit itself writes a key that neither parent had.
    repo.git("checkout", "-q", "main")
    repo.commit({"m2.txt": "m2\n"}, "main again")
    repo.git("checkout", "-q", "feature")
    repo.git("merge", "-q", "--no-commit", "main")
    repo.write("merge.txt", f"X={merge_key}\n")
    repo.git("add", "merge.txt")
    evil = repo.commit(message="evil merge")
    evil_result = run_scan("--git", "--range", f"{tip}..{evil}", cwd=repo.path)
    assert [(f["secret_sha256"], f["commit"], f["line"]) for f in evil_result.findings] == [
        (rules.identity(merge_key), evil, 1)
    ]


@pytest.mark.parametrize("bad", ["nope..main", "-x..main", "main..HEAD~9", "a b"])
def test_bad_range_is_a_one_line_error(repo: Repo, bad: str) -> None:
    repo.commit({"a": "a\n"}, "one")
    result = run_scan("--git", f"--range={bad}", cwd=repo.path)
    assert result.code == 2
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert "range" in result.stderr


def test_range_on_a_bare_clone(tmp_path: Path, repo: Repo) -> None:
    key = rules.API_KEY.mint()
    a = repo.commit({"a": "a\n"}, "one")
    b = repo.commit({"b": key}, "two")
    bare = tmp_path / "bare.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(bare))
    result = run_scan("--git", str(bare), "--range", f"{a}..{b}", cwd=tmp_path)
    assert [(f["commit"], f["path"], f["line"]) for f in result.findings] == [(b, "b", 1)]


def test_range_takes_the_repository_as_its_path(tmp_path: Path, repo: Repo) -> None:
    key = rules.API_KEY.mint()
    a = repo.commit({"a": "a\n"}, "one")
    b = repo.commit({"b": key}, "two")
    result = run_scan("--range", f"{a}..{b}", "--format", "json", str(repo.path), cwd=tmp_path)
    assert [(f["commit"], f["path"], f["line"]) for f in result.findings] == [(b, "b", 1)]
    staged = run_scan("--staged", str(repo.path), cwd=tmp_path)  # only the repository it runs in
    assert staged.code == 2 and "--staged takes no PATH" in staged.stderr


# --- staged --------------------------------------------------------------------------------------------


def test_staged_reports_only_lines_the_next_commit_adds(repo: Repo) -> None:
    committed, staged, unstaged = (rules.API_KEY.mint() for _ in range(3))
    repo.commit({"config.py": f"A = 1\nOLD = '{committed}'\n"}, "already committed")
    repo.write("config.py", f"A = 1\nOLD = '{committed}'\nB = 2\nNEW = '{staged}'\n")
    repo.git("add", "config.py")
    repo.write("config.py", f"A = 1\nOLD = '{committed}'\nB = 2\nNEW = '{staged}'\nU = '{unstaged}'\n")
    repo.write("untracked.txt", unstaged)

    result = run_scan("--staged", cwd=repo.path)

    assert result.code == 1, result.stderr
    [f] = result.findings
    assert (f["path"], f["line"], f["column"], f["secret_sha256"]) == (
        "config.py",
        4,
        8,
        rules.identity(staged),
    )
    assert "commit" not in f
    assert staged not in result.stdout

    text = run_scan("--staged", "--format", "text", cwd=repo.path)
    assert text.code == 1
    assert "config.py:4" in text.stdout and staged not in text.stdout


def test_staged_in_a_subdirectory_and_clean_index(repo: Repo) -> None:
    repo.commit({"a/b.txt": "x\n"}, "one")
    (repo.path / "a").mkdir(exist_ok=True)
    assert run_scan("--staged", cwd=repo.path / "a").code == 0
    key = rules.API_KEY.mint()
    repo.write("c/d.txt", f"\n{key}\n")
    repo.git("add", "c/d.txt")
    result = run_scan("--staged", cwd=repo.path / "a")
    assert [(f["path"], f["line"]) for f in result.findings] == [("c/d.txt", 2)]


def test_staged_on_an_unborn_branch(repo: Repo) -> None:
    key = rules.WEBHOOK_SECRET.mint()
    assert run_scan("--staged", cwd=repo.path).code == 0
    repo.write("first.env", f"one\ntwo\nthree\nS={key}\n")
    repo.git("add", "first.env")
    result = run_scan("--staged", cwd=repo.path)
    assert result.code == 1, result.stderr
    assert [(f["path"], f["line"], f["type"]) for f in result.findings] == [
        ("first.env", 4, "soundpiece_webhook_secret")
    ]


@pytest.mark.parametrize(
    "name",
    [
        "with space.txt",
        "tab\there.txt",
        "caf\u00e9/\u65e5\u672c.txt",
        'quo"te.txt',
        "back\\slash.txt",
        " lead",
    ],
)
def test_staged_odd_paths(repo: Repo, name: str) -> None:
    key = rules.API_KEY.mint()
    repo.commit({"keep": "k\n"}, "one")
    repo.write(name, f"a\n{key}\n")
    repo.git("add", "--", name)
    result = run_scan("--staged", cwd=repo.path)
    assert result.code == 1, result.stderr
    assert [(f["path"], f["line"]) for f in result.findings] == [(name, 2)]


def test_staged_odd_paths_with_quote_path_on(repo: Repo) -> None:
    """A user's core.quotePath=true (the default) must not leak into the parsed paths."""
    key = rules.API_KEY.mint()
    repo.git("config", "core.quotePath", "true")
    name = "d\u00e9j\u00e0 vu\t.txt"
    repo.write(name, key)
    repo.git("add", "--", name)
    result = run_scan("--staged", cwd=repo.path)
    assert [(f["path"], f["line"]) for f in result.findings] == [(name, 1)]


def test_staged_in_a_bare_repository_is_an_error(tmp_path: Path, repo: Repo) -> None:
    repo.commit({"a": "a\n"}, "a")
    bare = tmp_path / "b.git"
    repo.git("clone", "-q", "--bare", str(repo.path), str(bare))
    result = run_scan("--staged", cwd=bare)
    assert result.code == 2 and len(result.stderr.strip().splitlines()) == 1


def test_staged_deletion_and_crlf(repo: Repo) -> None:
    key, crlf = rules.API_KEY.mint(), rules.API_KEY.mint()
    repo.commit({"gone.txt": key}, "one")
    repo.git("rm", "-q", "gone.txt")
    repo.write("win.txt", f"a\r\nb\r\nK={crlf}\r\n".encode())
    repo.git("add", "win.txt")
    result = run_scan("--staged", cwd=repo.path)
    assert [(f["path"], f["line"], f["secret_sha256"]) for f in result.findings] == [
        ("win.txt", 3, rules.identity(crlf))
    ]


def test_staged_api_directly(repo: Repo) -> None:
    from scanner.engine import Engine
    from scanner.run import scan
    from scanner.sources.git.changes import ChangesSource
    from scanner.sources.git.repo import open_repo

    key = rules.API_KEY.mint()
    repo.write("x.txt", f"1\n2\n{key}\n")
    repo.git("add", "x.txt")
    findings, stats = scan([ChangesSource.staged(open_repo(str(repo.path)))], Engine(), warn=pytest.fail)
    assert [(f.location.path, f.match.line, f.secret_sha256) for f in findings] == [
        (b"x.txt", 3, rules.identity(key))
    ]
    assert stats.files == 1


@pytest.mark.parametrize(
    "config",
    [
        ("diff.mnemonicPrefix", "true"),
        ("diff.noprefix", "true"),
        ("diff.dstPrefix", "new/"),
        ("color.ui", "always"),
        ("diff.relative", "true"),
        ("diff.external", "false"),
        ("core.quotePath", "true"),
    ],
)
def test_user_diff_config_does_not_change_reported_paths(repo: Repo, config: tuple[str, str]) -> None:
    """Settings in the user's git config must not change what the parser sees."""
    staged_key, range_key = rules.API_KEY.mint(), rules.API_KEY.mint()
    start = repo.commit({"README": "r\n"}, "one")
    tip = repo.commit({"b/in range.txt": f"\n{range_key}\n"}, "range")
    repo.write("b/x.txt", f"a\n{staged_key}\n")  # a top-level folder named like git's b/ prefix
    repo.git("add", "b/x.txt")
    repo.git("config", *config)

    staged = run_scan("--staged", cwd=repo.path / "b")
    ranged = run_scan("--git", "--range", f"{start}..{tip}", cwd=repo.path / "b")

    assert [(f["path"], f["line"]) for f in staged.findings] == [("b/x.txt", 2)]
    assert [(f["path"], f["line"], f["commit"]) for f in ranged.findings] == [("b/in range.txt", 2, tip)]


def test_excludes_apply_to_staged_range_and_history(repo: Repo) -> None:
    """--exclude and the configuration's exclude list skip paths in the index and in history too
    (a project's own test fixtures must not block its pre-commit hook)."""
    fixture, real = rules.API_KEY.mint(), rules.API_KEY.mint()
    start = repo.commit({"README": "r\n"}, "one")
    tip = repo.commit({"tests/fixtures/keys.txt": fixture, "app.py": f"K = '{real}'\n"}, "two")
    repo.write(".soundpiece-scan.toml", 'exclude = ["tests/fixtures/**"]\n')
    repo.write("tests/fixtures/more.txt", fixture)
    repo.git("add", "tests/fixtures/more.txt")

    staged = run_scan("--staged", cwd=repo.path, config=True)
    assert (staged.code, staged.findings) == (0, [])
    staged_all = run_scan("--staged", cwd=repo.path)
    assert [f["path"] for f in staged_all.findings] == ["tests/fixtures/more.txt"]

    for args in (["--git"], ["--git", "--range", f"{start}..{tip}"]):
        configured = run_scan(*args, cwd=repo.path, config=True)
        assert [f["path"] for f in configured.findings] == ["app.py"], args
        flagged = run_scan(*args, "--exclude", "tests/", "--exclude", "*.py", cwd=repo.path)
        assert (flagged.code, flagged.findings) == (0, []), args
        everything = run_scan(*args, cwd=repo.path)
        assert sorted(f["path"] for f in everything.findings) == ["app.py", "tests/fixtures/keys.txt"]
