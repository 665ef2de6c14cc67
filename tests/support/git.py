"""Real git repositories in a temp directory, and the scanner's CLI run against them.

Commits have fixed dates, and the author's and the committer's differ (in time and in time zone),
so a test can tell which one a report shows.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from tests.support.processes import HANG_GUARD

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1_700_000_000
"""The first commit is authored one minute after this (2023-11-14T22:13:20Z); each next one a minute later."""
AUTHOR_ZONE = "+0530"
COMMITTER_ZONE = "-0700"
COMMITTER_DELAY = 3_601
"""Seconds from a commit's author date to its committer date (as after a rebase or an applied patch)."""


def git_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    env.update(
        HOME=str(home),
        XDG_CONFIG_HOME=str(home / ".config"),
        GIT_CONFIG_NOSYSTEM="1",
        GIT_AUTHOR_NAME="Ada Author",
        GIT_AUTHOR_EMAIL="ada@example.com",
        GIT_COMMITTER_NAME="Cid Committer",
        GIT_COMMITTER_EMAIL="cid@example.com",
        LC_ALL="C",
    )
    env.pop("PYTHONPATH", None)
    return env


def git(
    cwd: Path, *args: str, env: dict[str, str] | None = None, check: bool = True, input: bytes | None = None
) -> str:
    proc = subprocess.run(
        ["git", "-c", "init.defaultBranch=main", "-c", "commit.gpgsign=false", *args],
        cwd=cwd,
        env=env or git_env(cwd.parent),
        capture_output=True,
        input=input,
    )
    if check and proc.returncode:
        raise AssertionError(f"git {' '.join(args)} failed: {proc.stderr.decode(errors='replace')}")
    return proc.stdout.decode("utf-8", "surrogateescape").strip()


@dataclass
class Repo:
    path: Path
    home: Path
    clock: int = EPOCH

    @classmethod
    def init(cls, path: Path, home: Path, *args: str) -> Repo:
        path.mkdir(parents=True, exist_ok=True)
        repo = cls(path, home)
        repo.git("init", "-q", *args)
        return repo

    @property
    def env(self) -> dict[str, str]:
        return git_env(self.home)

    def git(
        self, *args: str, check: bool = True, env: dict[str, str] | None = None, input: bytes | None = None
    ) -> str:
        return git(self.path, *args, env=env or self.env, check=check, input=input)

    def write(self, name: str | bytes, content: str | bytes) -> Path:
        target = Path(os.fsdecode(self.path / os.fsdecode(name)))
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        return target

    def commit(
        self,
        files: dict[str, str | bytes | None] | None = None,
        message: str = "change",
        *,
        author: tuple[str, str] | None = None,
    ) -> str:
        """Write (or delete, for None) the files, stage everything, commit; return the commit id."""
        for name, content in (files or {}).items():
            if content is None:
                self.git("rm", "-q", "--", name)
            else:
                self.write(name, content)
                self.git("add", "--", name)
        self.clock += 60
        env = self.env
        env.update(
            GIT_AUTHOR_DATE=f"@{self.clock} {AUTHOR_ZONE}",
            GIT_COMMITTER_DATE=f"@{self.clock + COMMITTER_DELAY} {COMMITTER_ZONE}",
        )
        if author:
            env.update(GIT_AUTHOR_NAME=author[0], GIT_AUTHOR_EMAIL=author[1])
        self.git("commit", "-q", "--allow-empty", "-m", message, env=env)
        return self.git("rev-parse", "HEAD")


@dataclass
class Result:
    code: int
    stdout: str
    stderr: str

    @property
    def findings(self) -> list[dict]:
        return json.loads(self.stdout)["findings"] if self.stdout.strip() else []


def run_scan(
    *args: str,
    cwd: Path,
    env: dict[str, str] | None = None,
    timeout: float = HANG_GUARD,
    config: bool = False,
) -> Result:
    """``soundpiece-scan ARGS`` in ``cwd`` (JSON unless a format is given); never a traceback."""
    argv = [sys.executable, "-m", "scanner", *args, "--no-progress", *([] if config else ["--no-config"])]
    if "--format" not in args and "-f" not in args:
        argv += ["--format", "json"]
    environment = dict(env or os.environ)
    environment["PYTHONPATH"] = str(ROOT)
    proc = subprocess.run(argv, cwd=cwd, env=environment, capture_output=True, timeout=timeout)
    result = Result(proc.returncode, proc.stdout.decode(), proc.stderr.decode("utf-8", "replace"))
    assert "Traceback" not in result.stderr, result.stderr
    return result
