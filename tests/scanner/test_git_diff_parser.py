"""``scanner.sources.git.diff``: the added lines of unified and combined diffs, with new-file line numbers."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from scanner.sources.git.diff import AddedLines, parse_patch, unquote
from tests.support.git import Repo


def parsed(data: bytes) -> list[tuple[bytes, list[int], list[bytes]]]:
    return [(c.path, c.numbers, c.lines) for c in parse_patch(data)]


def test_unified_diff_with_context_and_several_hunks() -> None:
    patch = b"""diff --git a/src/app.py b/src/app.py
index 1111111..2222222 100644
--- a/src/app.py
+++ b/src/app.py
@@ -1,3 +1,4 @@
 import os
-OLD = 1
+NEW = 1
+KEY = "x"
 def f():
@@ -10,2 +11,3 @@ def f():
 a
+b
 c
"""
    assert parsed(patch) == [(b"src/app.py", [2, 3, 12], [b"NEW = 1", b'KEY = "x"', b"b"])]


def test_zero_context_and_several_files() -> None:
    patch = b"""diff --git a/a.txt b/a.txt
--- a/a.txt
+++ b/a.txt
@@ -3 +3 @@
-old
+new
@@ -7,0 +8,2 @@
+eight
+nine
diff --git a/b.txt b/b.txt
new file mode 100644
--- /dev/null
+++ b/b.txt
@@ -0,0 +1 @@
+only
"""
    assert parsed(patch) == [
        (b"a.txt", [3, 8, 9], [b"new", b"eight", b"nine"]),
        (b"b.txt", [1], [b"only"]),
    ]


def test_deletion_yields_nothing() -> None:
    patch = b"""diff --git a/gone.txt b/gone.txt
deleted file mode 100644
--- a/gone.txt
+++ /dev/null
@@ -1,2 +0,0 @@
-spk_secret
-more
"""
    assert parsed(patch) == []


def test_no_newline_marker_and_crlf() -> None:
    patch = (
        b"diff --git a/w.txt b/w.txt\n--- a/w.txt\n+++ b/w.txt\n"
        b"@@ -1 +1,2 @@\n-a\r\n\\ No newline at end of file\n+a\r\n+b\r\n\\ No newline at end of file\n"
    )
    assert parsed(patch) == [(b"w.txt", [1, 2], [b"a", b"b"])]
    # A CRLF patch as a whole (git output piped through a Windows tool).
    assert parsed(patch.replace(b"\n", b"\r\n")) == [(b"w.txt", [1, 2], [b"a", b"b"])]


def test_lines_that_look_like_headers_inside_a_hunk() -> None:
    patch = b"""diff --git a/x b/x
--- a/x
+++ b/x
@@ -0,0 +1,4 @@
+++ not a header
+--- nor this
+@@ -1 +1 @@
+diff --git a/y b/y
"""
    assert parsed(patch) == [
        (b"x", [1, 2, 3, 4], [b"++ not a header", b"--- nor this", b"@@ -1 +1 @@", b"diff --git a/y b/y"])
    ]


@pytest.mark.parametrize(
    ("header", "path"),
    [
        (b"+++ b/plain.txt", b"plain.txt"),
        (b"+++ b/with space.txt\t", b"with space.txt"),
        (b'+++ "b/tab\\there.txt"', b"tab\there.txt"),
        (b'+++ "b/caf\\303\\251 au lait"\t', "café au lait".encode()),
        (b'+++ "b/quo\\"te\\\\back"', b'quo"te\\back'),
        (b'+++ "b/\\a\\b\\f\\n\\r\\v"', b"\a\b\f\n\r\v"),
        (b"+++ b/dev/null", b"dev/null"),
    ],
)
def test_paths(header: bytes, path: bytes) -> None:
    patch = b"diff --git a/x b/x\n--- a/x\n" + header + b"\n@@ -0,0 +1 @@\n+k\n"
    assert parsed(patch) == [(path, [1], [b"k"])]


def test_unquote() -> None:
    assert unquote(b'"a\\tb\\303\\251"') == "a\tbé".encode()
    assert unquote(b'"\\"x\\""') == b'"x"'
    assert unquote(b'"plain"') == b"plain"


def test_combined_diff_reports_only_lines_new_against_every_parent() -> None:
    patch = b"""\x01abc123\x00Ann\x00ann@example.com\x002024-01-02T03:04:05+00:00

diff --cc merged.txt
index 1111111,2222222..3333333
--- a/merged.txt
+++ b/merged.txt
@@@ -1,3 -1,3 +1,5 @@@
  common
 +from main
+ from feature
++written by the merge
- gone from one side
++also new
  tail
"""
    [change] = parse_patch(patch)
    assert change.path == b"merged.txt"
    assert (change.numbers, change.lines) == ([4, 5], [b"written by the merge", b"also new"])
    assert change.commit == ("abc123", "Ann", "ann@example.com", "2024-01-02T03:04:05+00:00")


def test_octopus_combined_diff() -> None:
    patch = b"diff --cc o.txt\n--- a/o.txt\n+++ b/o.txt\n@@@@ -1 -1 -1 +1,3 @@@@\n   same\n+++new\n ++old\n"
    assert parsed(patch) == [(b"o.txt", [2], [b"new"])]


def test_commit_headers_attribute_each_file() -> None:
    patch = (
        b"\x01c1\x00A\x00a@x\x00d1\n\ndiff --git a/f b/f\n--- /dev/null\n+++ b/f\n@@ -0,0 +1 @@\n+one\n"
        b"\x01c2\x00B\x00b@x\x00d2\n\ndiff --git a/f b/f\n--- a/f\n+++ b/f\n@@ -1,0 +2 @@\n+two\n"
        b"\x01c3\x00C\x00c@x\x00d3\n"  # a commit with no diff
    )
    out = list(parse_patch(patch))
    assert [(c.commit[0] if c.commit else None, c.path, c.numbers, c.lines) for c in out] == [
        ("c1", b"f", [1], [b"one"]),
        ("c2", b"f", [2], [b"two"]),
    ]


def test_real_git_output(tmp_path: Path) -> None:
    """The parser against what git itself writes, quoting included."""
    repo = Repo.init(tmp_path / "r", tmp_path)
    repo.commit({"a b.txt": "1\n2\n3\n", "c.txt": "x\n"}, "one")
    repo.write("a b.txt", "1\nnew\n2\n3\nend")
    repo.write("t\tab.txt", "tabbed\n")
    repo.write("é.txt", "\u00e9\n")
    repo.git("add", "-A")
    repo.git("rm", "-q", "--cached", "c.txt")
    out = subprocess.run(
        ["git", "diff", "--cached", "-U0", "--no-color", "--no-renames"],
        cwd=repo.path,
        env=repo.env,
        capture_output=True,
        check=True,
    ).stdout
    assert b'"b/t\\tab.txt"' in out and b"\\303\\251" in out  # git quoted them
    assert sorted(parsed(out)) == [
        (b"a b.txt", [2, 5], [b"new", b"end"]),
        (b"t\tab.txt", [1], [b"tabbed"]),
        ("é.txt".encode(), [1], ["é".encode()]),
    ]


# --- properties ----------------------------------------------------------------------------------------

line_text = st.binary(max_size=40).map(lambda b: b.replace(b"\n", b"").rstrip(b"\r"))


@st.composite
def added_lines(draw: st.DrawFn) -> dict[int, bytes]:
    numbers = draw(st.sets(st.integers(min_value=1, max_value=200), max_size=30))
    return {n: draw(line_text) for n in numbers}


def synthesize(path: bytes, added: dict[int, bytes]) -> bytes:
    """A ``-U0`` patch adding exactly ``added`` (hunks of consecutive numbers, one removal line each)."""
    out = [b"diff --git a/" + path + b" b/" + path, b"index 0000000..1111111 100644"]
    out += [b"--- a/" + path, b"+++ b/" + path]
    numbers = sorted(added)
    runs: list[list[int]] = []
    for n in numbers:
        if runs and runs[-1][-1] == n - 1:
            runs[-1].append(n)
        else:
            runs.append([n])
    for run in runs:
        out.append(b"@@ -%d,1 +%d,%d @@" % (run[0], run[0], len(run)))
        out.append(b"-removed line")
        out += [b"+" + added[n] for n in run]
    return b"\n".join(out) + b"\n"


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(added=added_lines())
def test_property_synthesized_patch_round_trips(added: dict[int, bytes]) -> None:
    result = list(parse_patch(synthesize(b"dir/file.txt", added)))
    if not added:
        assert result == []
        return
    [change] = result
    assert change.path == b"dir/file.txt"
    assert change.numbers == sorted(added)
    assert change.lines == [added[n] for n in sorted(added)]


@settings(max_examples=300, deadline=None)
@given(
    data=st.one_of(
        st.binary(max_size=300),
        st.lists(
            st.sampled_from(
                [
                    b"diff --git a/x b/x",
                    b"diff --cc x",
                    b"+++ b/x",
                    b'+++ "b/\\3x"',
                    b'+++ "',
                    b"+++ /dev/null",
                    b"@@ -1 +1 @@",
                    b"@@ -1 +zz @@",
                    b"@@@ -1 -1 +1 @@@",
                    b"@@",
                    b"+added",
                    b"++both",
                    b"-gone",
                    b"\\ No newline at end of file",
                    b"\x01c\x00n",
                    b"\x01",
                    b"\xff\xfe",
                    b"",
                ]
            ),
            max_size=30,
        ).map(b"\n".join),
    )
)
def test_property_garbage_never_raises(data: bytes) -> None:
    for change in parse_patch(data):
        assert isinstance(change, AddedLines)
        assert len(change.numbers) == len(change.lines) > 0
        assert all(isinstance(n, int) for n in change.numbers)
