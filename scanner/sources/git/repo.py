"""Finding a repository and running git in it, with errors a user can read."""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass

from scanner.errors import ScanError


class GitError(ScanError):
    """git failed or the path is not a usable repository (exit code 2)."""


@dataclass(frozen=True, slots=True)
class Repo:
    git_dir: str
    bare: bool
    shallow: bool

    def command(self, *args: str) -> list[str]:
        # Quoting off and no pager, colour or external tools: output is parsed.
        return ["git", "--git-dir", self.git_dir, "-c", "core.quotePath=false", "--no-pager", *args]

    def run(self, *args: str, input: bytes | None = None) -> bytes:
        """Run git and return its stdout; a failure raises :class:`GitError` with git's message."""
        proc = subprocess.run(self.command(*args), input=input, capture_output=True, env=git_env())
        if proc.returncode != 0:
            raise GitError(first_line(proc.stderr) or f"git {args[0]} failed with status {proc.returncode}")
        return proc.stdout


def open_repo(path: str) -> Repo:
    """The repository at ``path`` (work tree or bare), or :class:`GitError`."""
    if not os.path.exists(path):
        raise GitError(f"{path}: no such file or directory")
    try:
        proc = subprocess.run(
            [
                "git",
                "-C",
                path,
                "rev-parse",
                "--absolute-git-dir",
                "--is-bare-repository",
                "--is-shallow-repository",
            ],
            capture_output=True,
            env=git_env(),
        )
    except FileNotFoundError:
        raise GitError("git is not installed (needed for --git and --staged)") from None
    if proc.returncode != 0:
        raise GitError(f"{path}: not a git repository ({first_line(proc.stderr)})")
    git_dir, bare, shallow = proc.stdout.decode("utf-8", "surrogateescape").splitlines()[:3]
    return Repo(git_dir=git_dir, bare=bare == "true", shallow=shallow == "true")


def git_env() -> dict[str, str]:
    env = dict(os.environ)
    env.update(GIT_TERMINAL_PROMPT="0", GIT_OPTIONAL_LOCKS="0", LC_ALL="C")
    env.pop("GIT_DIR", None)  # a hook's environment must not redirect us
    env.pop("GIT_WORK_TREE", None)
    return env


def first_line(stderr: bytes) -> str:
    for line in stderr.decode("utf-8", "replace").splitlines():
        line = line.strip()
        if line:
            return line.removeprefix("fatal: ").removeprefix("error: ")
    return ""
