"""Benchmark 2: scanning the whole history of a large repository (sqlalchemy) with planted credentials.

Clones the sqlalchemy mirror already on disk into a bare benchmark repository outside the project,
plants credentials in new commits made with git plumbing (side branch add-then-delete, tag-only
history, stash and remote-tracking refs, one blob under several paths and commits, a 21 MB file,
a modified file on main, plus decoys), repacks, then runs the raw object stream
(``git cat-file --batch-all-objects``), kingfisher and ``soundpiece-scan --git`` interleaved, and
times ``soundpiece-scan --staged`` in a work-tree clone. See bench/README.md.

    .venv/bin/python bench/scan_git.py [--runs 3] [--source /work/.mirror/sqlalchemy+sqlalchemy/repo]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import common

import rules

REPO_VERSION = 2
LAYOUTS = ("cloned", "repacked")
"""``cloned``: the packs as they came from GitHub, the planted objects in one more pack (what a
user's clone looks like); ``repacked``: ``git gc`` into one pack with a bitmap (flatters readers)."""
DEFAULT_SEED = 20261127
DEFAULT_SOURCE = Path("/work/.mirror/sqlalchemy+sqlalchemy/repo")
BASE_EPOCH = 1795000000  # 2026-11-18: every planted commit is newer than the real history
IDENT = {
    "GIT_AUTHOR_NAME": "Bench Planter",
    "GIT_AUTHOR_EMAIL": "planter@bench.invalid",
    "GIT_COMMITTER_NAME": "Bench Planter",
    "GIT_COMMITTER_EMAIL": "planter@bench.invalid",
}


class Planter:
    """Creates commits with plumbing only (hash-object, update-index on a private index, commit-tree)."""

    def __init__(self, repo: Path, base: str) -> None:
        self.repo = repo
        self.base = base
        self.clock = 0
        self.index = repo / "bench-planter.index"

    def _env(self, **extra: str) -> dict[str, str]:
        return {**os.environ, **IDENT, "GIT_INDEX_FILE": str(self.index), **extra}

    def git(self, *args: str, input: bytes | None = None, **env: str) -> str:
        return common.git(*args, cwd=self.repo, env=self._env(**env), input=input)

    def blob(self, content: bytes) -> str:
        return self.git("hash-object", "-w", "--stdin", input=content)

    def read(self, commit: str, path: str) -> bytes:
        proc = subprocess.run(
            ["git", "cat-file", "blob", f"{commit}:{path}"], cwd=self.repo, capture_output=True, check=True
        )
        return proc.stdout

    def commit(self, parents: list[str], changes: dict[str, str | None], message: str) -> str:
        """A commit whose tree is the first parent's plus ``changes`` (path -> blob sha, None = delete)."""
        self.git("read-tree", parents[0])
        info = "".join(
            f"0 {'0' * 40}\t{path}\n" if blob is None else f"100644 {blob}\t{path}\n"
            for path, blob in changes.items()
        )  # mode 0 removes the entry; --index-info needs no work tree
        self.git("update-index", "--index-info", input=info.encode())
        tree = self.git("write-tree")
        self.clock += 60
        date = f"{BASE_EPOCH + self.clock} +0000"
        args = ["commit-tree", tree, "-m", message]
        for parent in parents:
            args += ["-p", parent]
        return self.git(*args, GIT_AUTHOR_DATE=date, GIT_COMMITTER_DATE=date)

    def ref(self, name: str, sha: str) -> None:
        self.git("update-ref", name, sha)


def _line_of(content: bytes, token: bytes) -> int:
    return content[: content.index(token)].count(b"\n") + 1


def build_repo(source: Path, bench: Path, manifest_path: Path, seed: int, layout: str = "repacked") -> dict:
    source_head = common.git("rev-parse", "HEAD", cwd=source)
    params = {
        "version": REPO_VERSION,
        "seed": seed,
        "source": str(source),
        "source_head": source_head,
        "layout": layout,
    }
    if manifest_path.exists() and bench.is_dir():
        manifest = json.loads(manifest_path.read_text())
        if manifest.get("params") == params:
            common.log(f"benchmark repository {bench} up to date (manifest {manifest_path})")
            return manifest
    if not bench.resolve().is_relative_to(common.BENCH_ROOT):
        raise SystemExit(f"refusing to (re)create {bench}: not under {common.BENCH_ROOT}")
    shutil.rmtree(bench, ignore_errors=True)
    manifest_path.unlink(missing_ok=True)
    bench.parent.mkdir(parents=True, exist_ok=True)
    common.log(f"cloning {source} -> {bench} (--mirror --no-hardlinks) ...")
    common.git("clone", "--quiet", "--mirror", "--no-hardlinks", str(source), str(bench))
    # the on-disk mirror was fetched as a partial clone: its packs carry .promisor markers. Every
    # object is present and no promisor remote is configured here, so drop them: a plain clone.
    for marker in (bench / "objects" / "pack").glob("*.promisor"):
        marker.unlink()

    work = common.BENCH_ROOT / "planter.git"
    shutil.rmtree(work, ignore_errors=True)
    common.git("clone", "--quiet", "--bare", "--shared", str(bench), str(work))
    base = common.git("rev-parse", "refs/heads/main", cwd=work)
    p = Planter(work, base)
    rng = random.Random(seed)
    planted: list[dict] = []

    def tok(fmt: rules.TokenFormat = rules.API_KEY) -> bytes:
        return common.mint(fmt, rng)

    def record(kind: str, token: bytes, commit: str, path: str, content: bytes, refs: list[str]) -> None:
        planted.append(
            {
                "kind": kind,
                "type": rules.recognise(token).name,
                "secret_sha256": rules.identity(token),
                "commit": commit,
                "path": path,
                "line": _line_of(content, token),
                "refs": refs,
            }
        )

    # 1. added on a side branch, deleted by the next commit
    t = tok()
    content = b'# local settings -- do not commit\nDEBUG = True\nSOUNDPIECE_API_KEY = "' + t + b'"\n'
    a = p.commit([base], {"config/settings_local.py": p.blob(content)}, "Add local settings")
    b = p.commit([a], {"config/settings_local.py": None}, "Remove local settings")
    p.ref("refs/heads/bench/side-add-delete", b)
    record(
        "side_branch_add_then_delete",
        t,
        a,
        "config/settings_local.py",
        content,
        ["refs/heads/bench/side-add-delete"],
    )

    # 2. only reachable from an annotated tag (its branch never reaches the benchmark repository)
    t = tok(rules.WEBHOOK_SECRET)
    readme = p.read(base, "README.rst").split(b"\n")
    content = b"\n".join([*readme[:4], b"Webhook signing secret: " + t, *readme[4:]])
    c = p.commit([base], {"README.rst": p.blob(content)}, "Document the webhook secret")
    date = f"{BASE_EPOCH + p.clock} +0000"
    p.git("tag", "-a", "-m", "release candidate", "bench-tag-only", c, GIT_COMMITTER_DATE=date)
    record("tag_only", t, c, "README.rst", content, ["refs/tags/bench-tag-only"])

    # 3. a stash: index commit I (the file first appears here) and work-tree commit W (parents main, I)
    t = tok()
    content = b"wip notes\nkey " + t + b"\n"
    index_commit = p.commit([base], {"notes/wip.txt": p.blob(content)}, "index on main: wip")
    stash = p.commit([base, index_commit], {"notes/wip.txt": p.blob(content)}, "WIP on main: wip")
    p.ref("refs/stash", stash)
    record("stash_ref", t, index_commit, "notes/wip.txt", content, ["refs/stash"])

    # 4. only in a remote-tracking ref
    t = tok(rules.WEBHOOK_SECRET)
    content = b"APP_ENV=production\nSOUNDPIECE_WEBHOOK_SECRET=" + t + b"\nLOG_LEVEL=info\n"
    e = p.commit([base], {"deploy/.env": p.blob(content)}, "Deploy config")
    p.ref("refs/remotes/origin/bench-leak", e)
    record("remote_tracking_ref", t, e, "deploy/.env", content, ["refs/remotes/origin/bench-leak"])

    # 5. one blob under three paths in three commits: reported once, at the first commit
    t = tok()
    content = b"soundpiece=" + t + b"\n"
    blob = p.blob(content)
    f1 = p.commit([base], {"keys/soundpiece.txt": blob}, "Add keys")
    f2 = p.commit([f1], {"backup/soundpiece.txt": blob}, "Back up keys")
    p.ref("refs/heads/bench/dup-blob", f2)
    g = p.commit([base], {"other/copy.txt": blob}, "Copy keys elsewhere")
    p.ref("refs/heads/bench/dup-blob-2", g)
    record(
        "same_blob_two_paths",
        t,
        f1,
        "keys/soundpiece.txt",
        content,
        ["refs/heads/bench/dup-blob", "refs/heads/bench/dup-blob-2"],
    )

    # 6. a 21 MB file, the key about 15 MB in
    t = tok(rules.WEBHOOK_SECRET)
    rows = [
        b"INSERT INTO events VALUES (%d, 'user%d', '%08x');" % (i, i % 977, rng.getrandbits(32))
        for i in range(420_000)
    ]
    rows.insert(300_000, b"-- webhook: " + t)
    content = b"\n".join(rows) + b"\n"
    assert len(content) > 20 * 1000 * 1000, len(content)
    h = p.commit([base], {"data/dump.sql": p.blob(content)}, "Add database dump")
    p.ref("refs/heads/bench/large-file", h)
    record("large_file_21MB", t, h, "data/dump.sql", content, ["refs/heads/bench/large-file"])

    # 7. a modified existing file on main (main moves forward by one commit)
    t = tok()
    init = p.read(base, "lib/sqlalchemy/__init__.py").split(b"\n")
    content = b"\n".join([*init[:11], b'_SOUNDPIECE_KEY = "' + t + b'"', *init[11:]])
    m = p.commit([base], {"lib/sqlalchemy/__init__.py": p.blob(content)}, "Configure soundpiece")
    p.ref("refs/heads/main", m)
    record("main_modified_file", t, m, "lib/sqlalchemy/__init__.py", content, ["refs/heads/main"])

    # 8. decoys only: nothing here may be reported
    good = tok()
    bad = bytearray(good)
    bad[-1] = ord("A") if bad[-1] != ord("A") else ord("B")
    decoys = [
        bytes(bad),
        tok()[:-3],
        b"spk_<your-key>",
        b"whsec_" + bytes(rng.choice(rules.BASE62) for _ in range(32)),
        b"whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ]
    assert not any(rules.recognise(d) for d in decoys)
    content = b"".join(b"EXAMPLE_%d=%s\n" % (i, d) for i, d in enumerate(decoys))
    d = p.commit([base], {"docs/example.env": p.blob(content)}, "Document the environment")
    p.ref("refs/heads/bench/decoys", d)

    common.log("pushing the planted refs into the benchmark repository ...")
    common.git(
        "push",
        "--quiet",
        str(bench),
        "refs/heads/bench/*:refs/heads/bench/*",
        "refs/tags/bench-tag-only:refs/tags/bench-tag-only",
        "refs/stash:refs/bench-tmp/stash",
        "refs/remotes/origin/bench-leak:refs/remotes/origin/bench-leak",
        "+refs/heads/main:refs/heads/main",
        cwd=work,
    )
    # receive-pack refuses one-level names like refs/stash: move it into place in the bare repo
    common.git("update-ref", "refs/stash", stash, cwd=bench)
    common.git("update-ref", "-d", "refs/bench-tmp/stash", cwd=bench)
    shutil.rmtree(work)
    if layout == "repacked":
        common.log("git gc --prune=now (one pack and a bitmap) ...")
        common.git("gc", "--quiet", "--prune=now", cwd=bench)
    else:  # as cloned: the source's packs untouched, the planted (loose) objects in one more pack
        common.log("git repack -d (only the planted objects into a pack of their own) ...")
        common.git("repack", "-d", "-q", cwd=bench)
    packs = len(list((bench / "objects" / "pack").glob("*.pack")))
    counts = Counter()
    sizes = Counter()
    out = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch-check", "--unordered"],
        cwd=bench,
        capture_output=True,
        check=True,
    ).stdout
    for line in out.splitlines():
        _, kind, size = line.split()
        counts[kind.decode()] += 1
        sizes[kind.decode()] += int(size)
    manifest = {
        "params": params,
        "repo": str(bench),
        "objects": dict(counts),
        "object_bytes": dict(sizes),
        "planted": planted,
        "decoy_commit": d,
        "decoy_sha256": [rules.identity(x.decode()) for x in decoys],
        "packs": packs,
    }
    common.write_json(manifest_path, manifest)
    return manifest


# ---------------------------------------------------------------- outputs


def ours_findings(stdout: Path) -> list[dict]:
    out = []
    for f in json.loads(stdout.read_text() or "{}").get("findings", []):
        out.append(
            {
                "secret_sha256": f.get("secret_sha256"),
                "commit": f.get("commit"),
                "path": f.get("path"),
                "line": f.get("line"),
            }
        )
    return out


def kingfisher_findings(stdout: Path) -> list[dict]:
    out = []
    for item in json.loads(stdout.read_text() or "{}").get("findings", []):
        f = item.get("finding", {})
        git = f.get("git_metadata") or {}
        out.append(
            {
                "secret_sha256": rules.identity(f.get("snippet", "")),
                "commit": (git.get("commit") or {}).get("id"),
                "path": (git.get("file") or {}).get("path") or f.get("path"),
                "line": f.get("line"),
            }
        )
    return out


def correctness(findings: list[dict], manifest: dict) -> dict:
    by_sha: dict[str, list[dict]] = {}
    for f in findings:
        by_sha.setdefault(f["secret_sha256"], []).append(f)
    per_kind = {}
    exact = found = once = 0
    for p in manifest["planted"]:
        hits = by_sha.get(p["secret_sha256"], [])
        ok = [h for h in hits if h["commit"] == p["commit"] and h["path"] == p["path"]]
        line_ok = any(h["line"] == p["line"] for h in ok)
        found += bool(hits)
        exact += bool(ok)
        once += len(hits) == 1
        if not hits:
            status = "MISSED"
        elif not ok:
            got = hits[0]
            status = f"wrong place: {str(got['commit'])[:10]} {got['path']}"
        else:
            status = "ok" + ("" if line_ok else f" (line {ok[0]['line']} != {p['line']})")
            if len(hits) > 1:
                status += f", reported {len(hits)}×"
        per_kind[p["kind"]] = status
    planted = {p["secret_sha256"] for p in manifest["planted"]}
    return {
        "findings": len(findings),
        "planted_total": len(manifest["planted"]),
        "planted_found": found,
        "exact_commit_and_path": exact,
        "reported_once": once,
        "decoys_reported": len(set(by_sha) & set(manifest["decoy_sha256"])),
        "unexpected_reported": len(set(by_sha) - planted),
        "per_kind": per_kind,
    }


# ---------------------------------------------------------------- --staged latency


def staged_latency(bench: Path, ours: Path | None, kf: Path | None, runs: int, seed: int) -> dict:
    wt = common.BENCH_ROOT / "staged-wt"
    main = common.git("rev-parse", "refs/heads/main", cwd=bench)
    try:
        current = common.git("rev-parse", "HEAD", cwd=wt) if (wt / ".git").is_dir() else None
    except RuntimeError:  # e.g. the benchmark repository it borrows objects from was rebuilt
        current = None
    if current != main:
        common.log(f"cloning a work tree for --staged: {wt} ...")
        shutil.rmtree(wt, ignore_errors=True)
        common.git("clone", "--quiet", "--shared", str(bench), str(wt))
    common.git("reset", "--quiet", "--hard", "HEAD", cwd=wt)
    common.git("clean", "-fdq", cwd=wt)
    files = sorted(common.git("ls-files", "lib/sqlalchemy/orm", cwd=wt).splitlines())
    files = [f for f in files if f.endswith(".py")]
    rng = random.Random(seed)
    chosen = rng.sample(files, 10)
    token = common.mint(rules.API_KEY, rng)
    for i, rel in enumerate(chosen):
        path = wt / rel
        extra = b"\n# bench edit %d\nBENCH_FLAG_%d = True\n" % (i, i)
        if i == 0:
            extra += b'SOUNDPIECE_KEY = "' + token + b'"\n'
        path.write_bytes(path.read_bytes() + extra)
    common.git("add", *chosen, cwd=wt)
    result: dict = {"worktree": str(wt), "files": chosen, "secret_sha256": rules.identity(token)}
    if ours is None:
        result["error"] = "soundpiece-scan not installed"
        return result
    probe = subprocess.run(
        [str(ours), "--staged", "--format", "json", "--no-progress"], cwd=wt, capture_output=True, check=False
    )
    if probe.returncode not in (0, 1):
        result["error"] = (
            f"skipped, soundpiece-scan --staged failed (exit {probe.returncode}): "
            + (probe.stderr.decode(errors="replace").strip().splitlines() or [""])[-1]
        )
        common.log(f"--staged: {result['error']}")
        return result
    try:
        reported = {f.get("secret_sha256") for f in json.loads(probe.stdout or b"{}").get("findings", [])}
        result["finds_staged_credential"] = rules.identity(token) in reported
    except ValueError:
        result["finds_staged_credential"] = None
    common.log(f"--staged: {runs} runs of soundpiece-scan --staged --no-progress ...")
    result["ours"] = common.startup_median([str(ours), "--staged", "--no-progress"], runs, cwd=wt)
    if kf:
        cmd = [str(kf), "scan", str(wt), "--staged", *common.kingfisher_rule_flags()]
        common.log(f"--staged: {runs} runs of kingfisher scan --staged (reference) ...")
        result["kingfisher"] = common.startup_median(cmd, runs, cwd=wt)
    return result


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--source", type=Path, default=DEFAULT_SOURCE, help="repository to clone")
    parser.add_argument("--repo", type=Path, default=common.BENCH_ROOT / "sqlalchemy.git")
    parser.add_argument(
        "--layout",
        choices=[*LAYOUTS, "both"],
        default="both",
        help="the repository as cloned, repacked, or both",
    )
    parser.add_argument("--runs", type=int, default=3, help="measured runs per tool (plus one warm-up)")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
    parser.add_argument("--staged-runs", type=int, default=20)
    parser.add_argument("--only", action="append", choices=["git", "kingfisher", "ours", "staged"])
    parser.add_argument("--build-only", action="store_true")
    parser.add_argument("--results", type=Path, default=common.BENCH_ROOT / "results-git.json")
    args = parser.parse_args()

    layouts = LAYOUTS if args.layout == "both" else (args.layout,)
    wanted = set(args.only or ["git", "kingfisher", "ours", "staged"])
    ours = common.soundpiece_scan()
    kf = common.kingfisher_binary()
    everything: dict = {}
    for layout in layouts:
        base = args.repo.resolve()
        bench = base if layout == "repacked" else base.with_name(base.stem + "-cloned" + base.suffix)
        manifest_path = bench.parent / (bench.name + "-manifest.json")
        manifest = build_repo(args.source.resolve(), bench, manifest_path, args.seed, layout)
        if args.build_only:
            continue
        results = measure_history(bench, manifest, wanted, ours, kf, args.runs, layout)
        if layout == "repacked" and "staged" in wanted:
            results["staged"] = staged_latency(bench, ours, kf, args.staged_runs, args.seed)
        print_report(results, manifest)
        everything[layout] = results
    if everything:
        common.write_json(args.results, everything)
    return 0


def measure_history(bench: Path, manifest: dict, wanted: set[str], ours, kf, runs: int, layout: str) -> dict:
    """The raw blob stream, kingfisher (its defaults: archives and base64 on) and ours, interleaved."""
    out_dir = common.BENCH_ROOT / f"out-git-{layout}"
    tools: list[common.Tool] = []
    if "git" in wanted:
        tools.append(
            common.Tool(
                "git cat-file (floor)",
                ["git", "-C", str(bench), "cat-file", "--batch-all-objects", "--batch", "--unordered"],
                ok_codes=(0,),
            )
        )
    if "kingfisher" in wanted:
        cmd = [
            str(kf or "kingfisher"),
            "scan",
            str(bench),
            *common.kingfisher_rule_flags(),
            "--git-history",
            "full",
        ]
        tools.append(common.Tool("kingfisher", cmd, ok_codes=(0, 200, 205), stdout_name="kingfisher.json"))
    if "ours" in wanted:
        cmd = [str(ours or "soundpiece-scan"), "--git", str(bench), "--format", "json", "--no-progress"]
        tools.append(common.Tool("soundpiece-scan", cmd, stdout_name="ours.json", cwd=common.BENCH_ROOT))
    common.run_interleaved(tools, runs, out_dir)
    results: dict = {
        "repo": str(bench),
        "layout": layout,
        "packs": manifest.get("packs"),
        "objects": manifest["objects"],
        "object_bytes": manifest["object_bytes"],
        "planted": len(manifest["planted"]),
        "tools": {},
        "staged": None,
    }

    def check(tool: common.Tool) -> dict:
        parse = kingfisher_findings if tool.name == "kingfisher" else ours_findings
        return correctness(parse(tool.last_stdout), manifest)

    for tool in tools:
        results["tools"][tool.name] = common.judged_summary(tool, check)
    return results


def print_report(results: dict, manifest: dict) -> None:
    tools = results["tools"]
    ours = tools.get("soundpiece-scan", {})
    ours_wall = ours.get("median_wall")
    rows = []
    for name, entry in tools.items():
        if entry.get("error") and not entry.get("runs"):
            rows.append([name, "—", "—", "—", "—", f"skipped: {str(entry['error'])[:100]}"])
            continue
        corr = entry.get("correctness")
        if corr is None:
            found = "—"
        elif "error" in corr:
            found = corr["error"][:60]
        else:
            found = (
                f"{corr['findings']} ({corr['exact_commit_and_path']}/{corr['planted_total']} exact, "
                f"{corr['unexpected_reported']} other)"
            )
        rows.append(common.tool_row(name, entry, ours, found, name.split()[0]))
    objects = results["objects"]
    print(
        f"\n## Git history ({results['layout']}, {results.get('packs')} packs): {results['repo']}: "
        f"{objects.get('commit', 0)} commits, "
        f"{objects.get('blob', 0)} blobs "
        f"({results['object_bytes'].get('blob', 0) / 1e9:.2f} GB), {results['planted']} planted\n"
    )
    print(common.markdown_table(common.TOOL_COLUMNS, rows))
    print("\nfindings: raw count (planted found at the expected commit and path / planted, other values)")
    for name, entry in tools.items():
        corr = entry.get("correctness") or {}
        if corr.get("per_kind"):
            print(f"\n{name}, per planted credential:")
            for kind, status in corr["per_kind"].items():
                print(f"  - {kind}: {status}")
    kf = tools.get("kingfisher", {}).get("median_wall")
    floor = tools.get("git cat-file (floor)", {}).get("median_wall")
    mem = max(ours.get("peak_tree_pss_mb") or 0, ours.get("peak_rss_largest_process_mb") or 0) or None
    staged = results.get("staged") or {}
    staged_median = (staged.get("ours") or {}).get("median")
    corr = ours.get("correctness") or {}
    exact = None
    if corr and "error" not in corr:
        exact = (
            corr["exact_commit_and_path"] == corr["planted_total"]
            and corr["unexpected_reported"] == 0
            and corr["reported_once"] == corr["planted_total"]
        )
    print("\n### Targets (soundpiece-scan)\n")
    print(
        common.markdown_table(
            ["target", "measured", "verdict"],
            [
                [
                    "wall ≤ 0.5× kingfisher (both with archives and base64 on)",
                    common.fmt_ratio(common.ratio(ours_wall, kf)),
                    common.verdict(common.ratio(ours_wall, kf), 0.5),
                ],
                [
                    "wall ≤ 1.4× the raw blob stream",
                    common.fmt_ratio(common.ratio(ours_wall, floor)),
                    common.verdict(common.ratio(ours_wall, floor), 1.4),
                ],
                [
                    "peak memory ≤ 400 MB (max of tree PSS, largest RSS)",
                    common.fmt_mb(mem),
                    common.verdict(mem, 400),
                ],
                [
                    "--staged ≤ 150 ms (10 staged files, median)",
                    common.fmt_s(staged_median),
                    common.verdict(staged_median, 0.150),
                ],
                [
                    "every planted found once, right commit + path, nothing else",
                    "—" if exact is None else str(exact),
                    "not measured" if exact is None else ("PASS" if exact else "FAIL"),
                ],
            ],
        )
    )
    if staged.get("error"):
        print(f"\n--staged: {staged['error']}")
    elif staged:
        kf_staged = (staged.get("kingfisher") or {}).get("median")
        print(
            f"\n--staged: ours {common.fmt_s(staged_median)} (finds the staged credential: "
            f"{staged.get('finds_staged_credential')}); kingfisher --staged {common.fmt_s(kf_staged)}"
        )


if __name__ == "__main__":
    sys.exit(main())
