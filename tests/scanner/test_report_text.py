import io
import re

import pytest

import rules
from scanner.report import FORMATS, write_report
from scanner.report.text import human_bytes, printable, summary
from scanner.stats import ScanStats

ANSI = re.compile(r"\x1b\[[0-9;]*m")


def render(findings, stats=None, **options) -> str:
    out = io.StringIO()
    write_report("text", findings, stats or ScanStats(files=2, bytes=1234), out, **options)
    return out.getvalue()


def test_finding_line_is_path_line_column_type_redacted(finding):
    token = rules.API_KEY.mint()
    found = finding(token, path=b"src/app.py", line=7, column=12)
    first = render([found]).splitlines()[0]
    assert first == f"src/app.py:7:12: soundpiece_api_key {rules.redact(token)}"
    assert token not in render([found])


def test_show_secrets_prints_the_full_secret(finding):
    token = rules.WEBHOOK_SECRET.mint()
    assert f"soundpiece_webhook_secret {token}" in render([finding(token)], show_secrets=True)


def test_line_text_is_never_printed(finding):
    found = finding(line_text=b"password = hunter2 # context")
    for fmt in FORMATS:
        out = io.StringIO()
        write_report(fmt, [found], ScanStats(), out)
        assert "hunter2" not in out.getvalue(), fmt


def test_git_findings_show_short_commit_author_and_date(finding):
    commit = "0123456789abcdef0123456789abcdef01234567"
    found = finding(commit=commit, author_name="Ada Lovelace", date="2026-01-02T03:04:05Z")
    line = render([found]).splitlines()[0]
    assert line.endswith(" commit 0123456789ab Ada Lovelace 2026-01-02T03:04:05Z")


def test_no_colour_unless_asked(finding):
    findings = [finding()]
    assert not ANSI.search(render(findings))
    coloured = render(findings, color=True)
    assert ANSI.search(coloured)
    assert ANSI.sub("", coloured) == render(findings)


def test_control_characters_in_paths_are_escaped(finding):
    found = finding(path=b"evil\x1b[2J\nname.py", author_name="x\ry", commit="a" * 40)
    out = render([found])
    assert "\x1b" not in out and "\r" not in out
    assert out.splitlines()[0].startswith("evil\\x1b[2J\\x0aname.py:")


def test_undecodable_path_bytes_are_shown_as_escapes(finding):
    assert render([finding(path=b"caf\xe9.txt")]).startswith("caf\\xe9.txt:3:9:")


@pytest.mark.parametrize(
    ("count", "paths", "expected"),
    [
        (1, [b"a"], "1 credential found in 1 file ("),
        (2, [b"a", b"a"], "2 credentials found in 1 file ("),
        (3, [b"a", b"b", b"b"], "3 credentials found in 2 files ("),
    ],
)
def test_summary_counts_credentials_and_files(finding, count, paths, expected):
    findings = [finding(path=p) for p in paths][:count]
    stats = ScanStats(files=34201, bytes=490_200_000, seconds=0.41)
    assert summary(findings, stats) == expected + "34,201 files, 490.2 MB scanned in 0.41 s)"


def test_summary_without_findings_mentions_suppressed_and_skipped():
    stats = ScanStats(files=1, bytes=10, seconds=0.004, skipped=2, findings_suppressed=3)
    expected = "No credentials found (1 file, 10 B scanned in 0.00 s; 3 suppressed; 2 skipped)"
    assert summary([], stats) == expected
    assert render([], stats) == summary([], stats) + "\n"


@pytest.mark.parametrize(
    ("size", "text"),
    [
        (0, "0 B"),
        (999, "999 B"),
        (1000, "1.0 kB"),
        (999_949, "999.9 kB"),
        (999_999, "1.0 MB"),
        (5 * 10**12, "5.0 TB"),
    ],
)
def test_human_bytes(size, text):
    assert human_bytes(size) == text


def test_printable_keeps_ordinary_unicode():
    assert printable("données/ファイル.txt") == "données/ファイル.txt"


def test_unknown_format_is_a_value_error():
    with pytest.raises(ValueError, match="unknown report format"):
        write_report("xml", [], ScanStats(), io.StringIO())
