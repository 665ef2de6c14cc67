"""Which commit first brought each blob into history, and at which path.

Asked only for the few blobs that hold a credential: one ``git log`` walk in
which git itself filters the diffs (``--find-object``), oldest commit first.
"""

from __future__ import annotations

from dataclasses import dataclass

from scanner.sources.git.repo import GitError, Repo

BATCH = 500
"""Object names per git invocation (keeps the command line short)."""
ZERO = "0" * 40


@dataclass(frozen=True, slots=True)
class Introduction:
    commit: str
    path: bytes
    author_name: str
    author_email: str
    date: str


def first_appearances(repo: Repo, oids: set[str], revisions: list[str]) -> dict[str, Introduction]:
    """For each blob, the oldest commit in ``revisions`` whose diff adds it."""
    found: dict[str, Introduction] = {}
    todo = sorted(oids)
    # In a partial clone --find-object makes git fetch missing blobs from the promisor remote
    # (and fail when it is out of reach): there, one unfiltered walk, filtered here instead.
    lazy = _lazy_fetching(repo)
    step = (len(todo) or 1) if lazy else BATCH
    for start in range(0, len(todo), step):
        batch = [] if lazy else todo[start : start + step]
        out = repo.run(
            "log",
            "--reverse",
            "--date-order",
            "-m",
            "--raw",
            "--no-abbrev",
            "--no-renames",
            "--root",  # a root commit's files too, whatever the user's log.showRoot
            "-z",
            "--format=%x01%H%x00%an%x00%ae%x00%aI%x00",
            *(f"--find-object={oid}" for oid in batch),
            *revisions,
            "--",
        )
        for intro, oid in parse_raw_log(out):
            if oid in oids and oid not in found:
                found[oid] = intro
    return found


def _lazy_fetching(repo: Repo) -> bool:
    """True in a partial clone, where reading a missing object fetches it from a remote."""
    try:
        out = repo.run("config", "--get-regexp", r"^(extensions\.partialclone|remote\..*\.promisor)$")
    except GitError:
        return False  # git config exits 1 when nothing matches
    return bool(out.strip())


def parse_raw_log(out: bytes):
    """Yield (introduction, new blob) for every added or changed path in ``git log --raw -z``."""
    for record in out.split(b"\x01")[1:]:
        fields = record.split(b"\x00")
        commit, name, email, date = (f.decode("utf-8", "replace") for f in fields[:4])
        rest = fields[4:]
        i = 0
        while i < len(rest) - 1:
            meta = rest[i].lstrip(b"\n")
            if not meta.startswith(b":"):
                i += 1
                continue
            path = rest[i + 1]
            i += 2
            parts = meta[1:].split(b" ")
            if len(parts) < 5 or b"160000" in parts[:2]:
                continue  # submodule links are commits of another repository
            new_oid = parts[3].decode("ascii")
            if new_oid != ZERO:
                yield Introduction(commit, path, name, email, date), new_oid
