"""End-to-end tests of the ``soundpiece-scan`` command line, run as a real subprocess.

Every test builds a tree under ``tmp_path``, runs the console script on it and
checks exit code, stdout (the report) and stderr (warnings, errors, progress).
Hostile inputs (special files, odd names, vanishing files) are in
``test_hostile_inputs.py``.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import tomllib
import zlib
from pathlib import Path

import jsonschema
import pytest

import rules
from scanner.sources.files import POOL_THRESHOLD
from tests.support.processes import HANG_GUARD, reaped_peak, wait_measuring
from tests.support.scanner_cli import SCAN, scan, scan_json

ROOT = Path(__file__).resolve().parents[2]
SCHEMA = ROOT / "tests" / "data" / "schemas" / "sarif-schema-2.1.0.json"
FORMATS = ["text", "json", "jsonl", "sarif", "github"]
MIB = 1 << 20

VALID = "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdL"
VALID_WHSEC = "whsec_abcdefghijklmnopqrstuvwxyz0123451nc0VA"


def assert_one_line_error(result: subprocess.CompletedProcess[bytes], *needles: str) -> str:
    assert result.returncode == 2, result
    err = result.stderr.decode()
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("soundpiece-scan: error: ")
    for needle in needles:
        assert needle in lines[0]
    return lines[0]


def assert_not_leaked(result: subprocess.CompletedProcess[bytes], *tokens: str) -> None:
    for token in tokens:
        assert token.encode() not in result.stdout
        assert token.encode() not in result.stderr


def write(path: Path, data: str | bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.encode() if isinstance(data, str) else data)
    return path


# --- basics: version, rules, exit codes ------------------------------------------------


def test_version(tmp_path: Path) -> None:
    result = scan("--version", cwd=tmp_path)
    assert result.returncode == 0
    version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
    assert result.stdout.decode().strip() == f"soundpiece-scan {version}"


def test_list_rules_json(tmp_path: Path) -> None:
    import re

    result = scan("--list-rules", "--format", "json", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    patterns = json.loads(result.stdout)
    assert {p["name"] for p in patterns} == {"soundpiece_api_key", "soundpiece_webhook_secret"}
    for p in patterns:
        assert re.fullmatch(p["regex"], p["example"])
        assert rules.recognise(p["example"]) is rules.format_named(p["name"])
    again = json.loads(scan("--list-rules", "--format", "json", cwd=tmp_path).stdout)
    assert [p["example"] for p in again] != [p["example"] for p in patterns]  # freshly minted


def crc_valid(token: str) -> bool:
    """The checksum of docs/token-format.md, computed here with zlib: the last 6 characters are the
    CRC-32 of the 32 before them, in base62, most significant first."""
    digits = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
    body, checksum = token[-38:-6], token[-6:]
    crc, text = zlib.crc32(body.encode()), ""
    for _ in range(6):
        crc, digit = divmod(crc, 62)
        text = digits[digit] + text
    return checksum == text


def test_list_rules_text_shows_a_fresh_example_each(tmp_path: Path) -> None:
    import re

    first, again = (scan("--list-rules", cwd=tmp_path) for _ in range(2))
    assert first.returncode == 0, first.stderr
    rows = [line.split("\t") for line in first.stdout.decode().splitlines()]
    assert [row[0] for row in rows] == ["soundpiece_api_key", "soundpiece_webhook_secret"]
    for name, regex, example, description in rows:
        assert re.fullmatch(regex, example) and crc_valid(example), (name, example)
        assert example.startswith({"soundpiece_api_key": "spk_"}.get(name, "whsec_")) and description
    assert [row[2] for row in rows] != [line.split("\t")[2] for line in again.stdout.decode().splitlines()]


def test_help_names_exit_codes_environment_and_defaults(tmp_path: Path) -> None:
    import re

    result = scan("--help", cwd=tmp_path, env={"COLUMNS": "200"})
    assert result.returncode == 0
    text = result.stdout.decode()
    read = set()  # every variable the scanner's code reads, found in its source
    for path in (ROOT / "scanner").rglob("*.py"):
        read |= set(re.findall(r"environ(?:\.get\(|\[)\"([A-Z_]+)\"", path.read_text()))
    assert read >= {"SOUNDPIECE_API_URL", "NO_COLOR", "XDG_CACHE_HOME"}
    for name in read:
        assert re.search(rf"^  {name} ", text, re.M), name
    codes = text[text.index("exit codes:") :]
    for code, meaning in [("0", "no credentials found"), ("1", "credentials found"), ("2", "an error")]:
        assert re.search(rf"^  {code} +{meaning}", codes, re.M), code
    assert "(default: text)" in text and "(default: every core)" in text and "(default: 3)" in text


def test_clean_tree_exits_0_and_default_path_is_cwd(tmp_path: Path) -> None:
    write(tmp_path / "a.py", "print('hello')\n")
    result = scan(cwd=tmp_path)
    assert result.returncode == 0
    assert result.stdout.decode().startswith("No credentials found (1 file")
    assert result.stderr == b""


def test_found_exits_1_and_default_path_is_cwd(tmp_path: Path) -> None:
    key = rules.API_KEY.mint()
    write(tmp_path / "sub" / "conf.env", f"# settings\nKEY={key}\n")
    result = scan(cwd=tmp_path)
    assert result.returncode == 1
    lines = result.stdout.decode().splitlines()
    assert lines[0] == f"./sub/conf.env:2:5: soundpiece_api_key {rules.redact(key)}"
    assert lines[1].startswith("1 credential found in 1 file (1 file,")
    assert_not_leaked(result, key)


def test_several_paths(tmp_path: Path) -> None:
    k1, k2 = rules.API_KEY.mint(), rules.WEBHOOK_SECRET.mint()
    write(tmp_path / "a" / "x.txt", k1)
    write(tmp_path / "b.txt", k2)
    write(tmp_path / "c" / "y.txt", rules.API_KEY.mint())  # not named: not scanned
    result, doc = scan_json("a", "b.txt", cwd=tmp_path)
    assert result.returncode == 1
    assert sorted((f["path"], f["secret_sha256"]) for f in doc["findings"]) == [
        ("a/x.txt", rules.identity(k1)),
        ("b.txt", rules.identity(k2)),
    ]
    assert doc["stats"]["files"] == 2


# --- formats and secrecy -----------------------------------------------------------------


@pytest.fixture
def leaky_tree(tmp_path: Path) -> tuple[Path, list[str]]:
    tokens = [rules.API_KEY.mint(), rules.WEBHOOK_SECRET.mint(), VALID, VALID_WHSEC]
    write(tmp_path / "src" / "app.py", f"API_KEY = '{tokens[0]}'\nSECRET = \"{tokens[1]}\"\n")
    write(tmp_path / "vectors.md", f"| `{tokens[2]}` | yes |\r\n| `{tokens[3]}` | yes |\r\n")
    return tmp_path, tokens


@pytest.mark.parametrize("fmt", FORMATS)
def test_secrets_never_printed_without_show_secrets(fmt: str, leaky_tree) -> None:
    root, tokens = leaky_tree
    result = scan("--format", fmt, cwd=root)
    assert result.returncode == 1
    assert_not_leaked(result, *tokens)
    out = result.stdout.decode()
    for token in tokens:
        redacted = rules.redact(token)
        assert redacted in out or json.dumps(redacted)[1:-1] in out


@pytest.mark.parametrize("fmt", FORMATS)
def test_show_secrets_prints_them(fmt: str, leaky_tree) -> None:
    root, tokens = leaky_tree
    result = scan("--format", fmt, "--show-secrets", cwd=root)
    assert result.returncode == 1
    for token in tokens:
        assert token.encode() in result.stdout
        assert token.encode() not in result.stderr


@pytest.mark.parametrize("fmt", FORMATS)
def test_output_file(fmt: str, leaky_tree) -> None:
    root, tokens = leaky_tree
    result = scan("--format", fmt, "--output", "report.out", cwd=root)
    assert result.returncode == 1
    assert result.stdout == b""
    report = (root / "report.out").read_bytes()
    assert report
    assert not any(t.encode() in report for t in tokens)
    assert b"\r\n" not in report


def test_output_file_inside_tree_is_not_scanned(leaky_tree) -> None:
    root, tokens = leaky_tree
    first = scan("--show-secrets", "--format", "jsonl", "-o", "report.jsonl", ".", cwd=root)
    assert first.returncode == 1
    assert tokens[0].encode() in (root / "report.jsonl").read_bytes()
    second = scan("--show-secrets", "--format", "jsonl", "-o", "report.jsonl", ".", cwd=root)
    assert len((root / "report.jsonl").read_bytes().splitlines()) == len(tokens)
    assert second.returncode == 1


def test_json_document(leaky_tree) -> None:
    root, tokens = leaky_tree
    result, doc = scan_json(cwd=root)
    assert result.returncode == 1
    assert set(doc) == {"findings", "stats"}
    assert doc["stats"]["files"] == 2
    assert doc["stats"]["bytes"] == sum(p.stat().st_size for p in root.rglob("*") if p.is_file())
    assert isinstance(doc["stats"]["seconds"], int | float) and doc["stats"]["seconds"] >= 0
    got = [(f["path"], f["line"], f["column"], f["type"], f["secret_sha256"]) for f in doc["findings"]]
    assert got == [
        ("./src/app.py", 1, 12, "soundpiece_api_key", rules.identity(tokens[0])),
        ("./src/app.py", 2, 11, "soundpiece_webhook_secret", rules.identity(tokens[1])),
        ("./vectors.md", 1, 4, "soundpiece_api_key", rules.identity(tokens[2])),
        ("./vectors.md", 2, 4, "soundpiece_webhook_secret", rules.identity(tokens[3])),
    ]
    for finding, token in zip(doc["findings"], tokens, strict=True):
        assert finding["redacted"] == rules.redact(token)
        assert "secret" not in finding
        assert "path_base64" not in finding


def test_jsonl_one_finding_per_line(leaky_tree) -> None:
    root, tokens = leaky_tree
    result = scan("--format", "jsonl", cwd=root)
    lines = result.stdout.decode().splitlines()
    assert len(lines) == len(tokens)
    _, doc = scan_json(cwd=root)
    assert [json.loads(line) for line in lines] == doc["findings"]


def test_jsonl_clean_is_empty(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "nothing")
    result = scan("--format", "jsonl", cwd=tmp_path)
    assert (result.returncode, result.stdout) == (0, b"")


def test_github_annotations(leaky_tree) -> None:
    root, _ = leaky_tree
    result = scan("--format", "github", cwd=root)
    lines = result.stdout.decode().splitlines()
    assert lines[0].startswith("::error file=src/app.py,line=1,col=12,endColumn=54,")
    assert len([line for line in lines if line.startswith("::error ")]) == 4


def test_columns_count_code_points(tmp_path: Path) -> None:
    key = rules.API_KEY.mint()
    write(tmp_path / "u.txt", f"first\nnaïve 🎵 = {key}\n")
    _, doc = scan_json(cwd=tmp_path)
    [finding] = doc["findings"]
    assert (finding["line"], finding["column"]) == (2, len("naïve 🎵 = ") + 1)


def test_sarif_validates_against_schema(leaky_tree) -> None:
    root, tokens = leaky_tree
    write(root / "odd dir" / "ça%20#x.txt", rules.API_KEY.mint())
    result = scan("--format", "sarif", cwd=root)
    assert result.returncode == 1
    log = json.loads(result.stdout)
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    jsonschema.validators.validator_for(schema)(schema).validate(log)
    results = log["runs"][0]["results"]
    assert len(results) == len(tokens) + 1
    uris = {r["locations"][0]["physicalLocation"]["artifactLocation"]["uri"] for r in results}
    assert uris == {"src/app.py", "vectors.md", "odd%20dir/%C3%A7a%2520%23x.txt"}


# --- what counts as a credential --------------------------------------------------------


@pytest.mark.parametrize(
    "decoy",
    [
        VALID[:-1] + "M",  # one character changed
        VALID[:-1],  # truncated
        "spk_<your-key>",
        "whsec_" + "A" * 32,  # Stripe style
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_dGhpcyBpcyBhIHN2aXggc2VjcmV0IHZhbHVlIQ==",  # base64 (Svix)
        VALID[:10] + VALID[11] + VALID[10] + VALID[12:],  # two characters swapped
    ],
)
def test_decoys_are_not_findings(tmp_path: Path, decoy: str) -> None:
    write(tmp_path / "d.txt", f"token = {decoy}\n{decoy}")
    result = scan(cwd=tmp_path)
    assert result.returncode == 0, result.stdout


def test_minted_tokens_with_one_char_changed_are_not_findings(tmp_path: Path) -> None:
    lines = []
    for fmt in rules.FORMATS:
        for _ in range(5):
            token = fmt.mint()
            i = len(fmt.prefix) + 7
            lines.append(token[:i] + ("a" if token[i] != "a" else "b") + token[i + 1 :])
            lines.append(token[:-1] + ("0" if token[-1] != "0" else "1"))
            lines.append(token[:-2])
    write(tmp_path / "near.txt", "\n".join(lines))
    assert scan(cwd=tmp_path).returncode == 0


@pytest.mark.parametrize(
    "template",
    [
        "KEY={}",
        '"{}"',
        "{}\r\n",
        "https://api.test/v1?key={}&x=1",
        '{{"k":"{}"}}',
        "abc{}xyz",
        "\x00\x01\x02{}\xff\xfe",
    ],
)
def test_glued_tokens_found(tmp_path: Path, template: str) -> None:
    token = rules.WEBHOOK_SECRET.mint()
    text = template.format(token)
    write(tmp_path / "g.bin", text.encode("latin-1"))
    result, doc = scan_json(cwd=tmp_path)
    assert result.returncode == 1
    [finding] = doc["findings"]
    assert finding["secret_sha256"] == rules.identity(token)
    assert finding["column"] == text.index(token) + 1


def test_binary_file(tmp_path: Path) -> None:
    token = rules.API_KEY.mint()
    blob = os.urandom(5000) + b"\x00" + token.encode() + b"\x00" + os.urandom(5000)
    write(tmp_path / "image.png", blob)
    result, doc = scan_json(cwd=tmp_path)
    assert result.returncode == 1
    assert [f["offset"] for f in doc["findings"]] == [5001]
    assert doc["findings"][0]["line"] == blob[:5001].count(b"\n") + 1


def test_crlf_lines(tmp_path: Path) -> None:
    tokens = [rules.API_KEY.mint() for _ in range(3)]
    write(tmp_path / "w.ini", "".join(f"[s{i}]\r\nkey={t}\r\n" for i, t in enumerate(tokens)))
    _, doc = scan_json(cwd=tmp_path)
    assert [(f["line"], f["column"]) for f in doc["findings"]] == [(2, 5), (4, 5), (6, 5)]


def expected_position(data: bytes, offset: int) -> tuple[int, int]:
    line_start = data.rfind(b"\n", 0, offset) + 1
    return data.count(b"\n", 0, offset) + 1, len(data[line_start:offset].decode("utf-8", "replace")) + 1


def planted(size: int, line: bytes | None, plants: dict[int, str]) -> bytes:
    data = bytearray((line * (size // len(line) + 1))[:size] if line else b"x" * size)
    for offset, token in plants.items():
        data[offset : offset + len(token)] = token.encode()
    return bytes(data)


@pytest.fixture(scope="module")
def big_inputs(tmp_path_factory) -> tuple[Path, dict[str, tuple[bytes, dict[int, str]]]]:
    """Files around and beyond the engine's 1 MiB chunk, tokens straddling the boundaries."""
    root = tmp_path_factory.mktemp("big")
    k, w = rules.API_KEY, rules.WEBHOOK_SECRET
    inputs = {
        "lines.txt": (
            3 * MIB,
            "ü line of text with ümlauts\n".encode(),
            {
                100: k.mint(),
                MIB - 20: k.mint(),
                2 * MIB - 30: w.mint(),
                MIB + 70: w.mint(),
                3 * MIB - 44: w.mint(),
            },
        ),
        "one-line.min.js": (
            3 * MIB,
            None,
            {5: k.mint(), MIB - 41: k.mint(), 2 * MIB - 1: w.mint(), 3 * MIB - 42: k.mint()},
        ),
        "several-chunks.log": (
            int(4.5 * MIB),
            b"2026-01-01 INFO request ok\n",
            {MIB * i + 997 * i: (k if i % 2 else w).mint() for i in range(5)},
        ),
    }
    out = {}
    for name, (size, line, plants) in inputs.items():
        data = planted(size, line, plants)
        (root / name).write_bytes(data)
        out[name] = (data, plants)
    return root, out


@pytest.mark.parametrize("via_stdin", [False, True], ids=["file", "stdin"])
def test_large_inputs_across_chunk_boundaries(big_inputs, via_stdin: bool) -> None:
    root, inputs = big_inputs
    for name, (data, plants) in inputs.items():
        if via_stdin:
            result, doc = scan_json("-", cwd=root, input=data)
        else:
            result, doc = scan_json(name, cwd=root)
        assert result.returncode == 1
        assert doc["stats"]["bytes"] == len(data)
        got = [(f["offset"], f["line"], f["column"], f["secret_sha256"]) for f in doc["findings"]]
        want = [(o, *expected_position(data, o), rules.identity(t)) for o, t in sorted(plants.items())]
        assert got == want, name
        assert_not_leaked(result, *plants.values())


# --- sources -----------------------------------------------------------------------------


def test_git_directories_skipped(tmp_path: Path) -> None:
    write(tmp_path / ".git" / "config", rules.API_KEY.mint())
    write(tmp_path / "sub" / ".git" / "objects" / "x", rules.API_KEY.mint())
    write(tmp_path / ".github" / "ci.yml", "ok")
    write(tmp_path / "sub" / "real.git", rules.API_KEY.mint())  # a file, not a .git folder
    _result, doc = scan_json(cwd=tmp_path)
    assert [f["path"] for f in doc["findings"]] == ["./sub/real.git"]
    assert doc["stats"]["files"] == 2


def test_symlinks_not_followed(tmp_path: Path) -> None:
    outside = write(tmp_path / "outside" / "secret.txt", rules.API_KEY.mint())
    tree = tmp_path / "tree"
    write(tree / "a" / "plain.txt", "nothing")
    (tree / "a" / "loop").symlink_to(".")
    (tree / "up").symlink_to("..")
    (tree / "link.txt").symlink_to(outside)
    (tree / "dangling").symlink_to(tmp_path / "nope")
    result, doc = scan_json(".", cwd=tree)
    assert result.returncode == 0, result
    assert doc["findings"] == []
    assert doc["stats"]["files"] == 1


def test_stdin(tmp_path: Path) -> None:
    key = rules.API_KEY.mint()
    result, doc = scan_json("-", cwd=tmp_path, input=f"line\n  {key}\n".encode())
    assert result.returncode == 1
    assert [(f["path"], f["line"], f["column"]) for f in doc["findings"]] == [("-", 2, 3)]
    assert_not_leaked(result, key)
    clean = scan("-", cwd=tmp_path, input=b"nothing here")
    assert clean.returncode == 0


def test_stdin_in_sarif_and_annotations_is_named_stdin(tmp_path: Path) -> None:
    """Not "-" under %SRCROOT% (a file named "-" in the repository): ``<stdin>``, resolved against nothing."""
    key = rules.API_KEY.mint()
    sarif = scan("--format", "sarif", "-", cwd=tmp_path, input=f"x\n{key}\n".encode())
    assert sarif.returncode == 1
    [result] = json.loads(sarif.stdout)["runs"][0]["results"]
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"] == {"uri": "%3Cstdin%3E", "description": {"text": "standard input"}}
    assert location["region"]["startLine"] == 2
    github = scan("--format", "github", "-", cwd=tmp_path, input=f"x\n{key}\n".encode())
    assert github.stdout.decode().startswith("::error file=<stdin>,line=2,col=1,")


def test_stdin_with_paths(tmp_path: Path) -> None:
    k1, k2 = rules.API_KEY.mint(), rules.WEBHOOK_SECRET.mint()
    write(tmp_path / "d" / "f.txt", k2)
    result, doc = scan_json("d", "-", cwd=tmp_path, input=k1.encode())
    assert result.returncode == 1
    assert sorted((f["path"], f["secret_sha256"]) for f in doc["findings"]) == [
        ("-", rules.identity(k1)),
        ("d/f.txt", rules.identity(k2)),
    ]
    assert doc["stats"]["files"] == 2


NON_UTF8 = b"caf\xe9-\xff.txt"


def test_non_utf8_path_reported_faithfully(tmp_path: Path) -> None:
    key = rules.API_KEY.mint()
    directory = os.fsencode(tmp_path) + b"/d\x80ir"
    os.mkdir(directory)
    with open(os.path.join(directory, NON_UTF8), "wb") as f:
        f.write(f"k={key}\n".encode())
    text = scan(cwd=tmp_path)
    assert text.returncode == 1
    assert text.stdout.decode().splitlines()[0].startswith("./d\\x80ir/caf\\xe9-\\xff.txt:1:3: ")
    _, doc = scan_json(cwd=tmp_path)
    [finding] = doc["findings"]
    assert finding["path"] == "./d\\x80ir/caf\\xe9-\\xff.txt"
    assert base64.b64decode(finding["path_base64"]) == b"./d\x80ir/" + NON_UTF8
    # named on the command line too
    _result, doc = scan_json(os.path.join(directory, NON_UTF8), cwd=tmp_path)
    assert base64.b64decode(doc["findings"][0]["path_base64"]) == os.path.join(directory, NON_UTF8)


@pytest.mark.parametrize("name", ["with space.txt", "new\nline.txt", "100%.txt", "#hash.txt", "-dash.txt"])
def test_odd_names(tmp_path: Path, name: str) -> None:
    key = rules.API_KEY.mint()
    write(tmp_path / name, key)
    _result, doc = scan_json(cwd=tmp_path)
    assert [f["path"] for f in doc["findings"]] == [f"./{name}"]
    text = scan(cwd=tmp_path).stdout.decode()
    shown = name.replace("\n", "\\x0a")
    assert text.splitlines()[0] == f"./{shown}:1:1: soundpiece_api_key {rules.redact(key)}"
    github = scan("--format", "github", cwd=tmp_path).stdout.decode()
    assert github.count("\n") == 2  # one annotation, one summary: the newline is escaped
    named = scan("--format", "jsonl", "--", name, cwd=tmp_path)
    assert json.loads(named.stdout)["path"] == name


# --- filters -----------------------------------------------------------------------------


def test_inline_marker(tmp_path: Path) -> None:
    allowed, reported = rules.API_KEY.mint(), rules.API_KEY.mint()
    write(
        tmp_path / "t.py",
        f"A = '{allowed}'  # soundpiece-scan: allow\n"
        f"B = '{reported}'\n"
        "# soundpiece-scan: allow (on its own line: does not cover the next)\n",
    )
    result, doc = scan_json(cwd=tmp_path)
    assert result.returncode == 1
    assert [f["secret_sha256"] for f in doc["findings"]] == [rules.identity(reported)]
    assert doc["stats"]["suppressed"] == 1
    write(tmp_path / "t.py", f"A = '{allowed}'  // soundpiece-scan: allow\r\n")
    assert scan(cwd=tmp_path).returncode == 0


def test_baseline_round_trip(tmp_path: Path) -> None:
    tokens = sorted([rules.API_KEY.mint(), rules.WEBHOOK_SECRET.mint(), rules.API_KEY.mint()])
    write(tmp_path / "src" / "a.py", f"A = '{tokens[0]}'\nB = '{tokens[1]}'\n")
    write(tmp_path / "src" / "b.py", f"C = '{tokens[2]}'\nA = '{tokens[0]}'\n")
    written = scan("--write-baseline", "baseline.json", "src", cwd=tmp_path)
    assert written.returncode == 0, written.stderr
    assert written.stdout == b""
    assert_not_leaked(written, *tokens)
    data = (tmp_path / "baseline.json").read_bytes()
    for token in tokens:
        assert token.encode() not in data
    document = json.loads(data)
    assert list(document["secrets"]) == sorted(rules.identity(t) for t in tokens)
    for forbidden in (b"line", b"column", b"offset", b"a.py", b"src", b"date", b"time"):
        assert forbidden not in data

    # Moving code around (and to another file) rewrites the very same bytes.
    write(tmp_path / "src" / "a.py", f"\n\n\nB = '{tokens[1]}'\n")
    write(tmp_path / "src" / "moved" / "c.py", f"# moved\nA = '{tokens[0]}'; C = '{tokens[2]}'\n")
    write(tmp_path / "src" / "b.py", "")
    assert scan("--write-baseline", "baseline2.json", "src", cwd=tmp_path).returncode == 0
    assert (tmp_path / "baseline2.json").read_bytes() == data

    # The baseline suppresses exactly those; a new credential is still reported.
    assert scan("--baseline", "baseline.json", "src", cwd=tmp_path).returncode == 0
    new = rules.WEBHOOK_SECRET.mint()
    write(tmp_path / "src" / "new.py", f"N = '{new}'\n")
    result, doc = scan_json("--baseline", "baseline.json", "src", cwd=tmp_path)
    assert result.returncode == 1
    assert [f["secret_sha256"] for f in doc["findings"]] == [rules.identity(new)]
    assert doc["stats"]["suppressed"] == 3


def test_baseline_errors(tmp_path: Path) -> None:
    write(tmp_path / "a.txt", "x")
    assert_one_line_error(scan("--baseline", "missing.json", cwd=tmp_path), "missing.json")
    write(tmp_path / "garbage.json", b"\x00\xffnot json{{{")
    assert_one_line_error(scan("--baseline", "garbage.json", cwd=tmp_path), "garbage.json")
    write(tmp_path / "list.json", "[1, 2]")
    assert_one_line_error(scan("--baseline", "list.json", cwd=tmp_path), "list.json")


def test_exclude_from_pyproject(tmp_path: Path) -> None:
    kept = rules.API_KEY.mint()
    write(
        tmp_path / "pyproject.toml",
        '[project]\nname = "x"\n\n[tool.soundpiece-scan]\nexclude = ["tests/**", "*.min.js"]\n',
    )
    write(tmp_path / "tests" / "fixture.py", rules.API_KEY.mint())
    write(tmp_path / "web" / "app.min.js", rules.API_KEY.mint())
    write(tmp_path / "web" / "app.js", kept)
    _result, doc = scan_json(cwd=tmp_path)
    assert [f["path"] for f in doc["findings"]] == ["./web/app.js"]
    # the config is read from the working directory, and --no-config ignores it
    assert len(scan_json("--no-config", cwd=tmp_path)[1]["findings"]) == 3
    assert len(scan_json(str(tmp_path), cwd=tmp_path.parent)[1]["findings"]) == 3


def test_exclude_from_dedicated_file_wins(tmp_path: Path) -> None:
    write(tmp_path / "pyproject.toml", '[tool.soundpiece-scan]\nexclude = ["a/**"]\n')
    write(tmp_path / ".soundpiece-scan.toml", 'exclude = ["b/"]\n')
    write(tmp_path / "a" / "x.txt", rules.API_KEY.mint())
    write(tmp_path / "b" / "y.txt", rules.API_KEY.mint())
    _, doc = scan_json(cwd=tmp_path)
    assert [f["path"] for f in doc["findings"]] == ["./a/x.txt"]
    # patterns are relative to the scan root named on the command line
    write(tmp_path / "a" / "b" / "z.txt", rules.API_KEY.mint())
    _, doc = scan_json("a", cwd=tmp_path)
    assert [f["path"] for f in doc["findings"]] == ["a/x.txt"]


@pytest.mark.parametrize("root", [".", "./", "tree", "tree/", "tree//", "./tree/.", "ABS", "ABS/", "ABS//"])
def test_exclude_on_command_line_whatever_the_root_spelling(tmp_path: Path, root: str) -> None:
    tree = tmp_path / "tree"
    write(tree / "gen" / "x.txt", rules.API_KEY.mint())
    write(tree / "src" / "gen.txt", rules.API_KEY.mint())
    write(tree / "y.txt", rules.API_KEY.mint())
    cwd = tree if root in (".", "./") else tmp_path
    root = root.replace("ABS", str(tree))
    _, doc = scan_json("--exclude", "/gen/", "--exclude", "src/*.txt", root, cwd=cwd)
    assert [f["path"].rsplit("/", 1)[-1] for f in doc["findings"]] == ["y.txt"], root


def test_baseline_path_from_config(tmp_path: Path) -> None:
    key = rules.API_KEY.mint()
    write(tmp_path / "src" / "k.py", key)
    write(tmp_path / ".soundpiece-scan.toml", 'baseline = ".secrets-baseline.json"\n')
    assert scan("--write-baseline", ".secrets-baseline.json", cwd=tmp_path).returncode == 0
    result = scan(cwd=tmp_path)
    assert result.returncode == 0, result.stdout
    assert b"1 suppressed" in result.stdout
    (tmp_path / ".secrets-baseline.json").unlink()
    assert_one_line_error(scan(cwd=tmp_path), ".secrets-baseline.json")


@pytest.mark.parametrize(
    "name, content",
    [
        (".soundpiece-scan.toml", b"exclude = [unterminated\n"),
        (".soundpiece-scan.toml", b"\xff\xfe\x00garbage"),
        (".soundpiece-scan.toml", b"excludes = []\n"),
        (".soundpiece-scan.toml", b"exclude = ['!negated']\n"),
        ("pyproject.toml", b"[tool.soundpiece-scan]\nexclude = 'not a list'\n"),
        ("pyproject.toml", b"[tool.soundpiece-scan\n"),
    ],
)
def test_bad_config_is_exit_2(tmp_path: Path, name: str, content: bytes) -> None:
    write(tmp_path / name, content)
    write(tmp_path / "k.txt", rules.API_KEY.mint())
    assert_one_line_error(scan(cwd=tmp_path), name)


def test_missing_path_is_exit_2(tmp_path: Path) -> None:
    write(tmp_path / "k.txt", rules.API_KEY.mint())
    result = scan("k.txt", "does-not-exist", cwd=tmp_path)
    assert_one_line_error(result, "does-not-exist", "no such file")
    assert result.stdout == b""  # nothing scanned before the check


@pytest.mark.parametrize("args", [["--jobs", "0"], ["--format", "xml"], ["--output", "/nonexistent/dir/r"]])
def test_usage_errors_are_exit_2(tmp_path: Path, args: list[str]) -> None:
    result = scan(*args, cwd=tmp_path)
    assert result.returncode == 2
    assert b"Traceback" not in result.stderr


# --- in-process scan vs. worker pool ------------------------------------------------------


@pytest.fixture(scope="module")
def many_files(tmp_path_factory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("many")
    count = POOL_THRESHOLD + 200
    assert count > 600
    planted_tokens: dict[str, str] = {}
    for i in range(count):
        directory = root / f"d{i % 7}"
        directory.mkdir(exist_ok=True)
        name = f"d{i % 7}/f{i:04d}.txt"
        if i % 37 == 0:
            token = (rules.API_KEY if i % 2 else rules.WEBHOOK_SECRET).mint()
            planted_tokens[name] = token
            (root / name).write_text(f"line\nvalue={token}\n")
        else:
            (root / name).write_text(f"file {i}\n" * (i % 5))
    return root, planted_tokens


@pytest.mark.parametrize("jobs", ["1", "2"])
def test_many_files_in_process_and_in_pool(many_files, jobs: str) -> None:
    root, planted_tokens = many_files
    result, doc = scan_json("--jobs", jobs, cwd=root)
    assert result.returncode == 1, result.stderr
    assert result.stderr == b""
    got = {f["path"]: (f["line"], f["column"], f["secret_sha256"]) for f in doc["findings"]}
    assert got == {f"./{name}": (2, 7, rules.identity(token)) for name, token in planted_tokens.items()}
    assert doc["stats"]["files"] == POOL_THRESHOLD + 200
    assert [f["path"] for f in doc["findings"]] == sorted(got)
    assert_not_leaked(result, *planted_tokens.values())


def test_pool_warnings_go_to_stderr_and_json_still_parses(many_files, tmp_path: Path) -> None:
    root, planted_tokens = many_files
    fifo = root / "d3" / "zz.fifo"
    if not fifo.exists():
        os.mkfifo(fifo)
    try:
        result, doc = scan_json("--jobs", "2", "-", ".", cwd=root, input=b"")
    finally:
        fifo.unlink()
    assert result.returncode == 1
    assert len(doc["findings"]) == len(planted_tokens)
    assert result.stderr.decode() == (
        "soundpiece-scan: warning: ./d3/zz.fifo: skipped, not a regular file (FIFO)\n"
    )


def test_stdin_closed_is_exit_2(tmp_path: Path) -> None:
    result = subprocess.run(
        [*SCAN, "--no-progress", "-"],
        cwd=tmp_path,
        capture_output=True,
        timeout=HANG_GUARD,
        preexec_fn=lambda: os.close(0),
    )
    assert_one_line_error(result, "standard input is closed")


@pytest.mark.parametrize("fmt", ["text", "jsonl", "sarif"])
def test_a_reader_that_leaves_early_ends_the_scan_quietly_with_its_verdict(tmp_path: Path, fmt: str) -> None:
    """``soundpiece-scan . | head -1``: no traceback, no "broken pipe", and the exit code still says
    "credentials found" (ripgrep, likewise, exits silently with its match status)."""
    keys = "".join(f"{rules.API_KEY.mint()}\n" for _ in range(3000))
    write(tmp_path / "keys.txt", keys)  # reports larger than a pipe's 64 KiB
    proc = subprocess.Popen(
        [*SCAN, "--no-progress", "--format", fmt, "."],
        cwd=tmp_path,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert proc.stdout is not None and proc.stderr is not None
    first = proc.stdout.readline()
    proc.stdout.close()  # what head does after its line
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 1
    assert first and err == b""


def test_a_closed_stderr_silences_warnings_but_not_the_verdict(tmp_path: Path) -> None:
    """``2>&1 | head``-style: warnings can no longer be written; the scan goes on and reports."""
    key = rules.API_KEY.mint()
    root = tmp_path / "root"
    write(root / "k.txt", key)
    for i in range(1500):  # a warning each, more than a pipe holds
        os.mkfifo(root / f"fifo-{i:04d}")
    with (tmp_path / "report.json").open("w+b") as out:
        proc = subprocess.Popen(
            [*SCAN, "--no-progress", "--format", "json", "."],
            cwd=root,
            stdin=subprocess.DEVNULL,
            stdout=out,
            stderr=subprocess.PIPE,
        )
        assert proc.stderr is not None
        first = proc.stderr.readline()
        proc.stderr.close()
        assert proc.wait(timeout=60) == 1
        out.seek(0)
        doc = json.loads(out.read())
    assert first.startswith(b"soundpiece-scan: warning: ")
    assert [f["secret_sha256"] for f in doc["findings"]] == [rules.identity(key)]
    assert doc["stats"]["skipped"] == 1500


@pytest.mark.parametrize("fmt", ["text", "github", "json"])
def test_ascii_only_stdout(tmp_path: Path, fmt: str) -> None:
    key = rules.API_KEY.mint()
    write(tmp_path / "ça.txt", key)
    result = subprocess.run(
        [*SCAN, "--no-progress", "--format", fmt],
        cwd=tmp_path,
        capture_output=True,
        timeout=HANG_GUARD,
        stdin=subprocess.DEVNULL,
        env={**os.environ, "PYTHONIOENCODING": "ascii", "NO_COLOR": "1"},
    )
    assert result.returncode == 1, result.stderr.decode()
    assert result.stderr == b""
    result.stdout.decode("ascii")
    assert b"\\u2026" in result.stdout
    assert_not_leaked(result, key)


@pytest.mark.parametrize("via_stdin", [False, True], ids=["file", "stdin"])
def test_inline_marker_on_a_line_cut_by_a_chunk_boundary(tmp_path: Path, via_stdin: bool) -> None:
    """The marker and the token are on one line, but the 1 MiB chunk boundary falls between them."""
    allowed_before, allowed_after, reported = (rules.API_KEY.mint() for _ in range(3))
    marker = "  # soundpiece-scan: allow"
    data = bytearray(b"filler line\n" * (3 * MIB // 12))
    # token ends just before the first boundary, its marker just after it
    line1 = f"\nA = '{allowed_before}'{marker}\n".encode()
    at1 = MIB - line1.index(b"'", 6) - 2
    data[at1 : at1 + len(line1)] = line1
    # the marker well before the second boundary, the token across it (the engine's third
    # buffer starts 43 bytes, one token length less one, before 2 MiB)
    prefix = f"\n{marker}{' ' * 50}B = '".encode()
    line2 = prefix + f"{allowed_after}'\n".encode()
    at2 = 2 * MIB - 10 - len(prefix)
    data[at2 : at2 + len(line2)] = line2
    data += f"C = '{reported}'\n".encode()
    assert data[MIB - 10 : MIB + 10].count(b"\n") == 0 and data[2 * MIB - 10 : 2 * MIB + 10].count(b"\n") == 0
    if via_stdin:
        _, doc = scan_json("-", cwd=tmp_path, input=bytes(data))
    else:
        write(tmp_path / "big.py", bytes(data))
        _, doc = scan_json(cwd=tmp_path)
    assert [f["secret_sha256"] for f in doc["findings"]] == [rules.identity(reported)]
    assert doc["stats"]["suppressed"] == 2


def test_ten_thousand_tokens_on_one_line(tmp_path: Path) -> None:
    """A leaked key list on one line: it ends, and memory is not one line copy per token (the whole
    process tree's, pool workers included). Its speed is measured in bench/, not here."""
    tokens = [rules.API_KEY.mint() for _ in range(10_000)]
    line = "[" + ",".join(f'"{t}"' for t in tokens) + "]"
    write(tmp_path / "keys.json", line)
    argv = [*SCAN, "--no-progress", "--format", "json", "--jobs", "1", "keys.json"]
    with (tmp_path / "out.json").open("wb") as out:
        proc = subprocess.Popen(
            reaped_peak(argv, tmp_path / "peak"), cwd=tmp_path, stdin=subprocess.DEVNULL, stdout=out
        )
    peak = wait_measuring(proc, timeout=HANG_GUARD, peak_file=tmp_path / "peak")
    assert peak is not None, f"did not finish in {HANG_GUARD} s"
    assert peak.reaped_max_kb > 0 and peak.mib < 400, peak
    result, doc = proc, json.loads((tmp_path / "out.json").read_bytes())
    assert result.returncode == 1
    assert [(f["line"], f["column"]) for f in doc["findings"]] == [(1, 3 + 45 * i) for i in range(10_000)]
    write(tmp_path / "keys.json", line + "  // soundpiece-scan: allow")
    result, doc = scan_json("--jobs", "1", "keys.json", cwd=tmp_path)
    assert (result.returncode, doc["stats"]["suppressed"]) == (0, 10_000)


@pytest.mark.parametrize("spelling", ["relative", "absolute", "dotted"])
def test_own_stale_report_is_never_scanned_however_spelled(tmp_path: Path, spelling: str) -> None:
    """A report left by an earlier --show-secrets run must not turn into findings of its own."""
    key = rules.API_KEY.mint()
    (tmp_path / "app.py").write_text(f"KEY = '{key}'\n")
    report = {"relative": "r.txt", "absolute": str(tmp_path / "r.txt"), "dotted": "./sub/../r.txt"}[spelling]
    (tmp_path / "sub").mkdir()
    first = scan(".", "--show-secrets", "--output", report, cwd=tmp_path)
    assert first.returncode == 1
    assert key in (tmp_path / "r.txt").read_text()
    again = scan(".", "--format", "json", "--output", report, cwd=tmp_path)
    assert again.returncode == 1
    paths = [f["path"] for f in json.loads((tmp_path / "r.txt").read_text())["findings"]]
    assert paths == ["./app.py"]


def test_this_repository_scans_clean_and_quick_with_its_own_configuration() -> None:
    """`scripts/scan` on this repository: the configuration in pyproject.toml leaves out the virtualenv
    (hundreds of MB) and the caches, and accepts docs/token-format.md's fixed vectors by baseline."""
    venv = sum(f.stat().st_size for f in (ROOT / ".venv").rglob("*") if f.is_file() and not f.is_symlink())
    result, doc = scan_json(cwd=ROOT)
    assert result.returncode == 0, result.stdout.decode()
    assert doc["findings"] == []
    assert doc["stats"]["suppressed"] == 4  # the four valid vectors of docs/token-format.md
    assert doc["stats"]["bytes"] < min(venv, 20 * MIB)
    assert doc["stats"]["seconds"] < 2
