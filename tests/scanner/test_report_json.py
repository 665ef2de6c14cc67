import io
import json

import rules
from scanner.report import write_report
from scanner.report.jsonl import write_finding
from scanner.stats import ScanStats

REQUIRED = {"type", "path", "line", "column", "secret_sha256", "redacted"}


def render(fmt, findings, stats=None, **options) -> str:
    out = io.StringIO()
    write_report(fmt, findings, stats or ScanStats(files=3, bytes=99, seconds=0.5), out, **options)
    return out.getvalue()


def test_json_document_has_findings_and_stats(finding):
    token = rules.API_KEY.mint()
    text = render("json", [finding(token, path=b"a/b.py", line=4, column=2)])
    document = json.loads(text)
    assert set(document) == {"findings", "stats"}
    (entry,) = document["findings"]
    assert set(entry) >= REQUIRED
    assert entry["type"] == "soundpiece_api_key"
    assert (entry["path"], entry["line"], entry["column"]) == ("a/b.py", 4, 2)
    assert entry["secret_sha256"] == rules.identity(token)
    assert entry["redacted"] == rules.redact(token)
    assert document["stats"] == ScanStats(files=3, bytes=99, seconds=0.5).to_dict()
    assert token not in text


def test_json_shows_the_secret_only_when_asked(finding):
    token = rules.WEBHOOK_SECRET.mint()
    document = json.loads(render("json", [finding(token)], show_secrets=True))
    assert document["findings"][0]["secret"] == token


def test_json_of_a_clean_scan(finding):
    assert json.loads(render("json", []))["findings"] == []


def test_jsonl_is_one_finding_per_line_and_nothing_else(finding):
    tokens = [rules.API_KEY.mint(), rules.WEBHOOK_SECRET.mint()]
    text = render("jsonl", [finding(t, line=i + 1) for i, t in enumerate(tokens)])
    lines = text.splitlines()
    assert len(lines) == 2 and text.endswith("\n")
    entries = [json.loads(line) for line in lines]
    assert [e["secret_sha256"] for e in entries] == [rules.identity(t) for t in tokens]
    assert all(set(e) >= REQUIRED for e in entries)
    assert not any(t in text for t in tokens)


def test_jsonl_of_a_clean_scan_is_empty():
    assert render("jsonl", []) == ""


def test_jsonl_streaming_matches_the_batch_output(finding):
    findings = [finding(line=n) for n in (1, 2, 3)]
    out = io.StringIO()
    for f in findings:
        write_finding(f, out)
    assert out.getvalue() == render("jsonl", findings)


def test_odd_paths_survive_as_json(finding):
    entry = json.loads(render("jsonl", [finding(path=b'x/caf\xe9 \n"q".py')]))
    assert entry["path"] == 'x/caf\\xe9 \n"q".py'
    assert entry["path_base64"]
