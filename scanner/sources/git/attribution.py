"""Which commit first brought each blob into history, and at which path.

Asked only for the few blobs that hold a credential: one ``git log`` walk in
which git itself filters the diffs (``--find-object``), oldest commit first.
A damaged history still gives findings: attributed from the refs that can be
walked, or named by the ref or the blob id when no commit can be found.
"""

from __future__ import annotations

import contextlib
import functools
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from scanner.engine import Match
from scanner.findings import Finding, Location
from scanner.sources.base import Warn
from scanner.sources.git.objects import PACK_WINDOWS
from scanner.sources.git.repo import GitError, Repo, first_line, git_env

BATCH = 500
"""Object names per git invocation (keeps the command line short)."""
SLICE_COMMITS = 2000
"""Fewest commits for a slice of its own: below that, one walk is over in a blink."""
ZERO = "0" * 40


@dataclass(frozen=True, slots=True)
class Introduction:
    commit: str
    path: bytes
    author_name: str
    author_email: str
    date: str


Walk = Callable[[Repo, set[str], list[str]], dict[str, Introduction]]
"""Where each of a set of blobs first came in, from the given revisions (:func:`first_appearances`)."""


def first_appearances(
    repo: Repo, oids: set[str], revisions: list[str], *, commits: int = 0, parts: int = 1
) -> dict[str, Introduction]:
    """For each blob, the oldest commit in ``revisions`` whose diff adds it.

    With ``parts`` > 1 and about ``commits`` commits in history, the walk is cut into up to that
    many slices of the commit order, one ``git log`` each, side by side: one walk diffs every commit
    on one core, after the scan, while the others wait (0.85 s on sqlalchemy).
    """
    found: dict[str, Introduction] = {}
    todo = sorted(oids)
    # In a partial clone --find-object makes git fetch missing blobs from the promisor remote
    # (and fail when it is out of reach): there, one unfiltered walk, filtered here instead.
    lazy = _lazy_fetching(repo)
    step = (len(todo) or 1) if lazy else BATCH
    slices = _slices(commits, parts)
    for start in range(0, len(todo), step):
        batch = [] if lazy else todo[start : start + step]
        log = [
            *PACK_WINDOWS,  # as fast as git's defaults here (1.05 s), 77 MB a process instead of 163 MB
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
        ]
        for out in _side_by_side(repo, [[*log, *cut, *revisions, "--"] for cut in slices]):
            for intro, oid in parse_raw_log(out):
                if oid in oids and oid not in found:
                    found[oid] = intro
    return found


def _slices(commits: int, parts: int) -> list[list[str]]:
    """``git log`` options cutting the date-ordered walk into slices, the oldest first (``--reverse``
    reverses each slice after the cut). Every commit falls in one slice whatever ``commits`` is: the
    last has no end.

    Newer slices are shorter (the newest 1 share of the commits, the next 2, ...): a commit's diff
    costs more the larger its tree, and trees grow. On sqlalchemy the newest quarter of the commits
    took 0.37 s to diff, the oldest 0.12 s; cut in halves, the newer slice took 0.79 s, the older 0.47 s.
    """
    parts = min(parts, commits // SLICE_COMMITS)
    if parts < 2:
        return [[]]
    shares = parts * (parts + 1) // 2
    cuts = []
    start = 0
    for share in range(1, parts):
        count = commits * share // shares
        cuts.append([f"--skip={start}", f"--max-count={count}"])
        start += count
    return [[f"--skip={start}"], *reversed(cuts)]


def _side_by_side(repo: Repo, commands: list[list[str]]) -> list[bytes]:
    """The output of each git command, all run at once; a failure raises :class:`GitError`."""
    if len(commands) == 1:
        return [repo.run(*commands[0])]
    procs = [
        subprocess.Popen(
            repo.command(*args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            env=git_env(),
        )
        for args in commands
    ]
    outs = [proc.communicate() for proc in procs]  # one after the other: the rest wait on their pipes
    for proc, (_, err) in zip(procs, outs, strict=True):
        if proc.returncode:
            raise GitError(first_line(err) or f"git log failed with status {proc.returncode}")
    return [out for out, _ in outs]


def _lazy_fetching(repo: Repo) -> bool:
    """True in a partial clone, where reading a missing object fetches it from a remote."""
    try:
        out = repo.run("config", "--get-regexp", r"^(extensions\.partialclone|remote\..*\.promisor)$")
    except GitError:
        return False  # git config exits 1 when nothing matches
    return bool(out.strip())


def parse_raw_log(out: bytes) -> Iterator[tuple[Introduction, str]]:
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


def attribute(
    repo: Repo,
    hits: list[tuple[str, tuple[bytes, ...], list[Match]]],
    warn: Warn,
    *,
    commits: int = 0,
    parts: int = 1,
) -> list[Finding]:
    """Findings for the blobs that hold matches, each at the commit and path that introduced it
    (inside the archive member a hit names); history's walk in up to ``parts`` slices when it has
    about ``commits`` commits (:func:`first_appearances`)."""
    if not hits:
        return []
    walk = functools.partial(first_appearances, commits=commits, parts=parts)
    intros, damaged = _introductions(repo, {oid for oid, _, _ in hits}, warn, walk)
    findings = []
    unreachable: dict[str, None] = {}  # in order, once each (a blob and its members are several hits)
    for oid, inner, matches in hits:
        intro = intros.get(oid)
        if intro is None:
            unreachable[oid] = None
            continue
        location = Location(
            path=intro.path,
            commit=intro.commit,
            author_name=intro.author_name,
            author_email=intro.author_email,
            date=intro.date,
            blob=oid,
            inner=inner,
        )
        findings += [Finding(m, location) for m in matches]
    if unreachable:
        findings += _unattributed(repo, hits, unreachable, damaged, warn)
    return findings


def _introductions(
    repo: Repo, oids: set[str], warn: Warn, walk: Walk = first_appearances
) -> tuple[dict[str, Introduction], bool]:
    """Where each blob came in, from every ref, or from those that can be walked; and whether history
    is too damaged to walk (then a blob without a commit cannot be told dangling)."""
    try:
        return walk(repo, oids, ["--all"]), False
    except GitError as exc:  # a ref naming a missing commit makes --all fail as a whole
        try:
            tips = _readable_tips(repo)
            warn(
                f"history could not be walked from every ref ({exc}): attributing from the {len(tips)} others"
            )
            return (walk(repo, oids, tips) if tips else {}), False
        except GitError as again:  # a corrupt commit or tree on the way from every tip
            warn(f"history could not be walked ({again}): credentials found are reported by blob id")
            return {}, True


def _unattributed(
    repo: Repo,
    hits: list[tuple[str, tuple[bytes, ...], list[Match]]],
    unreachable: dict[str, None],
    damaged: bool,
    warn: Warn,
) -> list[Finding]:
    """Findings for blobs no commit introduced: named by the ref that names the blob itself; by blob id
    when history is damaged (never dropped); else (staged or dangling objects) only a warning."""
    findings = []
    # A ref (usually a tag) may name a blob itself, with no commit or path around it.
    try:
        tagged = _refs_to_blobs(repo, set(unreachable))
    except GitError as exc:  # for-each-ref stops at a corrupt object a ref names
        damaged = True
        warn(f"refs could not be listed ({exc}): credentials found are reported by blob id")
        tagged = {}
    for oid, inner, matches in hits:
        if oid in tagged:
            location = Location(path=tagged[oid].encode("utf-8", "surrogateescape"), blob=oid, inner=inner)
            findings += [Finding(m, location) for m in matches]
    left = {oid: None for oid in unreachable if oid not in tagged}  # in order, once each
    if left and damaged:  # cannot tell dangling from committed: report, never drop
        for oid, inner, matches in hits:
            if oid in left:
                location = Location(path=oid.encode("ascii"), blob=oid, inner=inner)
                findings += [Finding(m, location) for m in matches]
    elif left:
        shown = ", ".join(oid[:12] for oid in list(left)[:5])
        warn(
            f"{len(left)} blobs holding credentials are not reachable from any ref "
            f"(staged or dangling objects, not reported as findings): {shown}"
        )
    return findings


def _readable_tips(repo: Repo) -> list[str]:
    """The commits and tags that refs and HEAD name and that the database holds."""
    out = repo.run("for-each-ref", "--format=%(objectname)")
    with contextlib.suppress(GitError):  # unborn or broken HEAD
        out += repo.run("rev-parse", "--verify", "--quiet", "HEAD")
    names = sorted(set(out.decode("ascii", "replace").split()))
    if not names:
        return []
    query = "\n".join(names).encode()
    checked = repo.run("cat-file", "--batch-check=%(objectname) %(objecttype)", input=query)
    return [
        line.split()[0]
        for line in checked.decode("ascii", "replace").splitlines()
        if line.endswith((" commit", " tag"))
    ]


def _refs_to_blobs(repo: Repo, oids: set[str]) -> dict[str, str]:
    """Blobs that a ref points at directly (``git tag key-blob <blob>``), with the ref's name."""
    out = repo.run("for-each-ref", "--format=%(objectname) %(*objectname) %(refname)")
    named: dict[str, str] = {}
    for line in out.decode("utf-8", "surrogateescape").splitlines():
        target, peeled, ref = line.split(" ", 2)
        for oid in (peeled or target, target):
            if oid in oids:
                named.setdefault(oid, ref)
    return named
