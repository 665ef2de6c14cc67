import io

import pytest

import rules
from scanner.report import write_report
from scanner.report.github import escape_data, escape_property
from scanner.stats import ScanStats


def annotations(findings, **options) -> list[str]:
    out = io.StringIO()
    write_report("github", findings, ScanStats(files=1, bytes=10), out, **options)
    return out.getvalue().splitlines()


def test_one_error_command_per_finding_then_the_summary(finding):
    token = rules.API_KEY.mint()
    lines = annotations([finding(token, path=b"src/app.py", line=5, column=7)])
    assert lines[0] == (
        f"::error file=src/app.py,line=5,col=7,endColumn=49,title=Soundpiece credential"
        f"::soundpiece_api_key {rules.redact(token)}"
    )
    assert lines[1].startswith("1 credential found in 1 file")
    assert token not in "\n".join(lines)


def test_show_secrets(finding):
    token = rules.API_KEY.mint()
    assert annotations([finding(token)], show_secrets=True)[0].endswith(f"::soundpiece_api_key {token}")


@pytest.mark.parametrize(
    ("raw", "data", "prop"),
    [
        ("plain", "plain", "plain"),
        ("100%", "100%25", "100%25"),
        ("a\r\nb", "a%0D%0Ab", "a%0D%0Ab"),
        ("k:v,w", "k:v,w", "k%3Av%2Cw"),
        ("%3A", "%253A", "%253A"),
    ],
)
def test_escaping_follows_the_actions_toolkit(raw, data, prop):
    assert escape_data(raw) == data
    assert escape_property(raw) == prop


def test_odd_path_is_escaped_in_the_file_property(finding):
    (line, _summary) = annotations([finding(path=b"dir,x/a:b%c\nd.py", line=1, column=1)])
    assert line.startswith("::error file=dir%2Cx/a%3Ab%25c%0Ad.py,line=1,col=1,")
    assert "\n" not in line


def test_absolute_paths_under_the_scan_root_become_relative(finding, tmp_path):
    path = bytes(tmp_path / "pkg" / "mod.py")
    (line, _) = annotations([finding(path=path)], scan_root=str(tmp_path))
    assert line.startswith("::error file=pkg/mod.py,")


def test_leading_dot_slash_is_dropped(finding):
    assert annotations([finding(path=b"./a/b.py")])[0].startswith("::error file=a/b.py,")


def test_git_findings_name_the_commit(finding):
    line = annotations([finding(commit="f" * 40)])[0]
    assert line.endswith("(commit ffffffffffff)")


def test_clean_scan_is_only_the_summary():
    assert annotations([]) == ["No credentials found (1 file, 10 B scanned in 0.00 s)"]


def test_stdin_is_named_stdin_not_dash(finding):
    token = rules.API_KEY.mint()
    stdin = finding(token, path=b"-", stdin=True, line=2, column=3)
    file = finding(token, path=b"-", line=2, column=3)  # a file named "-" in the repository
    lines = annotations([stdin, file], scan_root="/repo")
    assert lines[0].startswith("::error file=<stdin>,line=2,col=3,endColumn=45,")
    assert lines[1].startswith("::error file=-,line=2,col=3,")
