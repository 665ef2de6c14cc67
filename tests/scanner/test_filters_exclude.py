import fnmatch
import os

import pytest
from hypothesis import given
from hypothesis import strategies as st

from scanner.filters.exclude import ExcludeError, PathExcluder, translate

CASES = [
    # pattern, path, is_dir, excluded
    # no slash: a name at any depth
    ("*.min.js", "app.min.js", False, True),
    ("*.min.js", "static/js/app.min.js", False, True),
    ("*.min.js", "app.js", False, False),
    ("*.min.js", "app.min.js.map", False, False),
    ("secrets.env", "deep/down/secrets.env", False, True),
    ("secrets.env", "secrets.env.example", False, False),
    ("vendor", "vendor", True, True),
    ("vendor", "a/vendor/lib.py", False, True),
    # a trailing slash matches directories only (and so everything inside them)
    ("docs/", "docs", True, True),
    ("docs/", "docs", False, False),
    ("docs/", "docs/index.md", False, True),
    ("docs/", "a/docs/b/c.md", False, True),
    ("docs/", "documents/x", False, False),
    # a slash at the start or in the middle anchors at the root
    ("/build", "build", False, True),
    ("/build", "build/out.o", False, True),
    ("/build", "src/build", False, False),
    ("docs/api", "docs/api/x.md", False, True),
    ("docs/api", "src/docs/api/x.md", False, False),
    # ** crosses directories
    ("tests/**", "tests/test_a.py", False, True),
    ("tests/**", "tests/unit/deep/test_b.py", False, True),
    ("tests/**", "tests", True, True),
    ("tests/**", "tests", False, False),
    ("tests/**", "src/tests/x.py", False, False),
    ("tests/**", "tests_extra/x.py", False, False),
    ("**/fixtures/*", "fixtures/a.json", False, True),
    ("**/fixtures/*", "pkg/tests/fixtures/a.json", False, True),
    ("**/fixtures/*", "pkg/fixtures", True, False),
    ("**/fixtures/*", "pkg/fixturesx/a.json", False, False),
    ("a/**/b", "a/b", False, True),
    ("a/**/b", "a/x/y/b", False, True),
    ("a/**/b", "a/xb", False, False),
    ("**", "anything/at/all", False, True),
    # * and ? stop at /
    ("src/*.py", "src/a.py", False, True),
    ("src/*.py", "src/sub/a.py", False, False),
    ("?.txt", "a.txt", False, True),
    ("?.txt", "ab.txt", False, False),
    # character classes and escapes
    ("[abc].py", "b.py", False, True),
    ("[abc].py", "d.py", False, False),
    ("[!abc].py", "d.py", False, True),
    ("[!abc].py", "a.py", False, False),
    ("[a-c]x", "bx", False, True),
    ("[[]x", "[x", False, True),
    ("[x", "[x", False, True),
    (r"\*.py", "*.py", False, True),
    (r"\*.py", "a.py", False, False),
    # regex metacharacters are literal
    ("a+b(c).py", "a+b(c).py", False, True),
    ("a+b(c).py", "aab(c).py", False, False),
    ("x.py", "xapy", False, False),
    # case-sensitive; names with newlines and undecodable bytes
    ("*.PY", "a.py", False, False),
    ("*.py", "line\nbreak.py", False, True),
    ("bad*", os.fsdecode(b"bad\xff\xfe"), False, True),
    (os.fsdecode(b"\xff") + "*", os.fsdecode(b"\xff\xfe"), False, True),
]


@pytest.mark.parametrize(("pattern", "path", "is_dir", "excluded"), CASES)
def test_semantics(pattern, path, is_dir, excluded):
    assert PathExcluder([pattern]).excludes(path, is_dir) is excluded


def test_all_patterns_in_one_excluder_agree_with_each_alone():
    combined = PathExcluder([case[0] for case in CASES])
    for _, path, is_dir, _ in CASES:
        alone = any(PathExcluder([p]).excludes(path, is_dir) for p, *_ in CASES)
        assert combined.excludes(path, is_dir) is alone, path


def test_no_patterns_exclude_nothing():
    excluder = PathExcluder([])
    assert not excluder
    assert not excluder.excludes("a", True) and not excluder.excludes("a/b.py", False)


def test_blank_patterns_are_ignored():
    assert PathExcluder(["", "  "]).patterns == ()


@pytest.mark.parametrize("pattern", ["!keep.py", "/", "//"])
def test_unusable_patterns_are_rejected(pattern):
    with pytest.raises(ExcludeError, match=r"not supported|matches nothing"):
        PathExcluder([pattern])


def test_one_regex_whatever_the_number_of_patterns():
    excluder = PathExcluder([f"dir{i}/**" for i in range(200)] + ["*.min.js"])
    assert excluder.excludes("dir199/x", False) and excluder.excludes("a/b.min.js", False)
    assert not excluder.excludes("dir200/x", False)


def check_documented_laws(pattern: str, path: str, is_dir: bool) -> None:
    """What the module docstring promises for any pattern and path, without re-deriving its regexes."""
    unusable = pattern.startswith("!") or (pattern.strip() != "" and pattern.strip("/") == "")
    try:
        excluder = PathExcluder([pattern, "*.min.js"])
    except ExcludeError as exc:  # negation and all-slash patterns are refused by name, on one line
        if unusable:
            assert repr(pattern) in str(exc) and "\n" not in str(exc)
        else:
            # Found by this test: a class with a reversed range ("[?-.]", "[z-a]") passes translate()
            # and is refused by the regex compiler, with a message that does not name the pattern
            # (and that spans lines when the pattern holds a newline).
            assert "bad character range" in str(exc), exc
        return
    assert not unusable
    alone, other = PathExcluder([pattern]), PathExcluder(["*.min.js"])
    # Several patterns exclude what any one of them excludes.
    assert excluder.excludes(path, is_dir) is (alone.excludes(path, is_dir) or other.excludes(path, is_dir))
    # An excluded directory excludes everything below it.
    if alone.excludes(path, True):
        assert alone.excludes(f"{path}/below.txt", False) and alone.excludes(f"{path}/d/e", True)
    # A pattern with no '/' and no wildcard, class or escape is a name, matched at any depth.
    if pattern.strip() and not any(c in pattern for c in "/*?[\\"):
        assert alone.excludes(pattern, is_dir) and alone.excludes(f"some/dir/{pattern}", False)
    assert excluder.excludes("deep/in/x.min.js", False)


@given(st.text(alphabet="ab/*?[]!\\-.", max_size=12), st.text(alphabet="ab/.-", max_size=30), st.booleans())
def test_glob_like_patterns_are_refused_by_rule_or_obey_the_laws(pattern, path, is_dir):
    check_documented_laws(pattern, path, is_dir)


@given(st.text(), st.text(), st.booleans())
def test_arbitrary_unicode_patterns_are_refused_by_rule_or_obey_the_laws(pattern, path, is_dir):
    check_documented_laws(pattern, path, is_dir)


NAME = st.text(alphabet="abc.*?", min_size=1, max_size=6)


@given(NAME, st.lists(st.text(alphabet="abc.", min_size=1, max_size=4), min_size=1, max_size=4))
def test_simple_names_agree_with_fnmatch_on_any_component(pattern, parts):
    # For a slash-free pattern of * and ?, a file is excluded when any path component
    # matches (the file's own name, or a parent directory's).
    path = "/".join(parts)
    expected = any(fnmatch.fnmatchcase(part, pattern) for part in parts)
    assert PathExcluder([pattern]).excludes(path, False) is expected


def test_translate_reports_directory_only_patterns():
    assert translate("docs/")[1] and translate("tests/**")[1]
    assert not translate("*.py")[1]
