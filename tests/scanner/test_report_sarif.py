import io
import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

import rules
from scanner.report import write_report
from scanner.report.sarif import FINGERPRINT_KEY
from scanner.stats import ScanStats

SCHEMA = Path(__file__).resolve().parents[1] / "data" / "schemas" / "sarif-schema-2.1.0.json"
"""The official OASIS schema (see tests/data/README.md)."""
PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


@pytest.fixture(scope="module")
def validator():
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema)


def sarif(findings, **options) -> tuple[dict, str]:
    out = io.StringIO()
    write_report("sarif", findings, ScanStats(files=1, bytes=1), out, **options)
    return json.loads(out.getvalue()), out.getvalue()


def results(findings, **options) -> list[dict]:
    return sarif(findings, **options)[0]["runs"][0]["results"]


def test_log_is_valid_sarif(finding, validator):
    findings = [
        finding(rules.API_KEY.mint(), path=b"src/a b#c%d.py"),
        finding(rules.WEBHOOK_SECRET.mint(), path=b"caf\xe9.txt", line=9, column=1),
        finding(commit="a" * 40, author_name="Ada", date="2026-01-01T00:00:00Z", blob="b" * 40),
    ]
    log, _ = sarif(findings, scan_root="/repo")
    errors = sorted(validator.iter_errors(log), key=str)
    assert not errors, errors[0].message
    assert log["version"] == "2.1.0" and len(log["runs"]) == 1


def test_clean_scan_is_valid_sarif(validator):
    log, _ = sarif([])
    validator.validate(log)
    assert log["runs"][0]["results"] == []


def test_driver_and_rules():
    log, _ = sarif([])
    run = log["runs"][0]
    driver = run["tool"]["driver"]
    version = tomllib.loads(PYPROJECT.read_text())["project"]["version"]
    assert driver["name"] == "soundpiece-scan" and driver["version"] == version
    assert driver["informationUri"].startswith("https://")
    assert [r["id"] for r in driver["rules"]] == [fmt.name for fmt in rules.FORMATS]
    for rule in driver["rules"]:
        assert rule["defaultConfiguration"] == {"level": "error"}
        assert rule["properties"]["tags"] == ["security", "secret"]
        assert rule["shortDescription"]["text"] and rule["fullDescription"]["text"]
        assert "revoke" in rule["help"]["text"]
    assert run["columnKind"] == "unicodeCodePoints"


def test_result_fields(finding):
    token = rules.WEBHOOK_SECRET.mint()
    log, text = sarif([finding(token, path=b"src/app.py", line=4, column=3)])
    (result,) = log["runs"][0]["results"]
    rule_ids = [r["id"] for r in log["runs"][0]["tool"]["driver"]["rules"]]
    assert result["ruleId"] == "soundpiece_webhook_secret"
    assert rule_ids[result["ruleIndex"]] == result["ruleId"]
    assert result["level"] == "error"
    assert result["message"]["text"] == f"soundpiece_webhook_secret {rules.redact(token)}"
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "src/app.py", "uriBaseId": "%SRCROOT%"}
    assert location["region"] == {"startLine": 4, "startColumn": 3, "endColumn": 3 + len(token)}
    assert result["properties"]["secretSha256"] == rules.identity(token)
    assert token not in text


def test_secret_only_with_show_secrets(finding):
    token = rules.API_KEY.mint()
    (result,) = results([finding(token)], show_secrets=True)
    assert token in result["message"]["text"]


@pytest.mark.parametrize(
    ("path", "uri"),
    [
        (b"a b/c#d%e?.py", "a%20b/c%23d%25e%3F.py"),
        (b"caf\xc3\xa9.txt", "caf%C3%A9.txt"),
        (b"caf\xe9.txt", "caf%E9.txt"),
        (b"./src/x.py", "src/x.py"),
    ],
)
def test_odd_paths_are_percent_encoded(finding, path, uri):
    (result,) = results([finding(path=path)])
    assert result["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] == uri


def test_paths_under_the_scan_root_are_relative(finding, tmp_path):
    log, _ = sarif([finding(path=bytes(tmp_path / "sub" / "f.py"))], scan_root=str(tmp_path))
    run = log["runs"][0]
    artifact = run["results"][0]["locations"][0]["physicalLocation"]["artifactLocation"]
    assert artifact == {"uri": "sub/f.py", "uriBaseId": "%SRCROOT%"}
    assert run["originalUriBaseIds"]["%SRCROOT%"]["uri"] == tmp_path.as_uri() + "/"


def test_paths_outside_the_scan_root_are_file_uris(finding, tmp_path):
    (result,) = results([finding(path=b"/elsewhere/x y.py")], scan_root=str(tmp_path))
    assert result["locations"][0]["physicalLocation"]["artifactLocation"] == {
        "uri": "file:///elsewhere/x%20y.py"
    }


def fingerprint(result: dict) -> str:
    return result["partialFingerprints"][FINGERPRINT_KEY]


def test_fingerprint_is_stable_when_the_line_moves(finding):
    token = rules.API_KEY.mint()
    before = results([finding(token, line=3, column=1)])
    after = results([finding(token, line=40, column=17)])
    assert fingerprint(before[0]) == fingerprint(after[0])


def test_fingerprints_differ_for_distinct_secrets_files_and_copies(finding):
    token = rules.API_KEY.mint()
    found = results(
        [
            finding(token, line=1),
            finding(token, line=2),  # a second copy in the same file
            finding(token, path=b"other.py"),
            finding(rules.API_KEY.mint(), line=1),
        ]
    )
    prints = [fingerprint(r) for r in found]
    assert len(set(prints)) == 4


def test_git_findings_carry_the_commit(finding):
    (result,) = results([finding(commit="c" * 40, author_name="Ada", date="2026-01-01")])
    assert result["properties"]["commit"] == "c" * 40
    assert result["properties"]["authorName"] == "Ada"


def test_stdin_is_not_a_file_under_the_source_root(finding, validator):
    """``<stdin>`` (percent-encoded, as every URI here) with no uriBaseId; a repository file named "-"
    keeps its place under %SRCROOT%."""
    stdin, file = finding(path=b"-", stdin=True), finding(path=b"-")
    log, _ = sarif([stdin, file], scan_root="/repo")
    errors = sorted(validator.iter_errors(log), key=str)
    assert not errors, errors[0].message
    artifacts = [r["locations"][0]["physicalLocation"]["artifactLocation"] for r in log["runs"][0]["results"]]
    assert artifacts == [
        {"uri": "%3Cstdin%3E", "description": {"text": "standard input"}},
        {"uri": "-", "uriBaseId": "%SRCROOT%"},
    ]


def test_archive_members_and_encodings_are_valid_sarif(finding, validator):
    import dataclasses

    member = finding(path=b"dist/app.zip", line=7, column=3)
    member = dataclasses.replace(member, location=member.location.within((b"lib/x.jar", b"config/.env")))
    encoded = finding(path=b"k8s/secret.yaml", line=4, column=12)
    encoded = dataclasses.replace(encoded, match=dataclasses.replace(encoded.match, encoding="base64"))
    log, _ = sarif([member, encoded], scan_root="/repo")
    assert not list(validator.iter_errors(log))
    first, second = log["runs"][0]["results"]
    location = first["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "dist/app.zip"
    assert location["region"] == {"startLine": 1}
    assert "dist/app.zip!lib/x.jar!config/.env, line 7 column 3" in first["message"]["text"]
    assert first["properties"]["innerPath"] == "lib/x.jar!config/.env"
    assert second["properties"]["encoding"] == "base64"
    assert second["message"]["text"].endswith("(base64)")
    region = second["locations"][0]["physicalLocation"]["region"]
    assert region["startLine"] == 4 and region["endColumn"] == 12 + 56  # the encoded text's width
    outside = finding(member.match.secret.decode(), path=b"dist/app.zip", line=7, column=3)
    [again] = results([outside], scan_root="/repo")
    assert again["partialFingerprints"] != first["partialFingerprints"]  # the member is part of the place
