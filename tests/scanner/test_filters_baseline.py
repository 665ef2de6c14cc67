import json

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import rules
from scanner.filters import baseline as baseline_module
from scanner.filters.baseline import BaselineError, load_baseline, render_baseline, write_baseline

settings_tmp = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
"""For the tests that write files: no deadline (a loaded disk is slow), few examples."""


def test_round_trip(finding, tmp_path):
    findings = [finding(rules.API_KEY.mint()), finding(rules.WEBHOOK_SECRET.mint())]
    path = tmp_path / "baseline.json"
    write_baseline(path, findings)
    assert load_baseline(path) == frozenset(f.secret_sha256 for f in findings)


def test_file_holds_no_secret_path_or_line(finding, tmp_path):
    token = rules.API_KEY.mint()
    path = tmp_path / "b.json"
    write_baseline(path, [finding(token, path=b"very/secret/place.py", line=1234)])
    text = path.read_text("ascii")
    assert token not in text and "place.py" not in text and "1234" not in text
    document = json.loads(text)
    assert document["version"] == 1
    assert document["secrets"] == {
        rules.identity(token): {"type": "soundpiece_api_key", "redacted": rules.redact(token)}
    }
    assert text.endswith("}\n")


def test_rewrite_is_byte_identical(finding, tmp_path):
    findings = [finding() for _ in range(5)]
    path = tmp_path / "b.json"
    write_baseline(path, findings)
    first = path.read_bytes()
    write_baseline(path, findings)
    assert path.read_bytes() == first
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


def test_duplicates_and_moves_do_not_change_the_file(finding):
    token = rules.API_KEY.mint()
    once = render_baseline([finding(token, path=b"a.py", line=1)])
    moved = render_baseline([finding(token, path=b"b/c.py", line=99), finding(token, path=b"d.py")])
    assert once == moved


TOKENS = [rules.API_KEY.mint() for _ in range(4)] + [rules.WEBHOOK_SECRET.mint() for _ in range(4)]


@given(order=st.permutations(range(len(TOKENS))), repeats=st.lists(st.sampled_from(range(len(TOKENS)))))
def test_order_and_repeats_do_not_matter(finding, order, repeats):
    canonical = render_baseline([finding(t) for t in TOKENS])
    shuffled = [finding(TOKENS[i], line=n + 1) for n, i in enumerate([*order, *repeats])]
    assert render_baseline(shuffled) == canonical


def test_empty_baseline_round_trips(tmp_path):
    path = tmp_path / "b.json"
    write_baseline(path, [])
    assert load_baseline(path) == frozenset()


def test_missing_file(tmp_path):
    with pytest.raises(BaselineError, match="not found"):
        load_baseline(tmp_path / "nope.json")


def test_directory(tmp_path):
    with pytest.raises(BaselineError, match="cannot read"):
        load_baseline(tmp_path)


SHA = "a" * 64


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "not valid JSON"),
        (b"\xff\xfe garbage", "not UTF-8"),
        (b'{"version": 1, "secrets": {"' + SHA.encode(), "not valid JSON"),
        (b"[" * 100_000, "not valid JSON"),
        (b"[]", "JSON object"),
        (b'{"secrets": {}}', "version"),
        (b'{"version": true, "secrets": {}}', "version"),
        (b'{"version": "1", "secrets": {}}', "version"),
        (b'{"version": 2, "secrets": {}}', "unsupported version 2"),
        (b'{"version": 1}', "secrets"),
        (b'{"version": 1, "secrets": []}', "secrets"),
        (b'{"version": 1, "secrets": {"abc": {"type": "x"}}}', "not a lowercase hex SHA-256"),
        (b'{"version": 1, "secrets": {"' + SHA.upper().encode() + b'": {"type": "x"}}}', "SHA-256"),
        (b'{"version": 1, "secrets": {"' + SHA.encode() + b'": "soundpiece_api_key"}}', "string 'type'"),
        (b'{"version": 1, "secrets": {"' + SHA.encode() + b'": {"type": 3}}}', "string 'type'"),
    ],
)
def test_bad_files_are_one_line_errors(tmp_path, content, reason):
    path = tmp_path / "b.json"
    path.write_bytes(content)
    with pytest.raises(BaselineError, match=reason) as info:
        load_baseline(path)
    assert "\n" not in str(info.value)
    assert str(path) in str(info.value)


def test_huge_files_are_refused_without_parsing(tmp_path, monkeypatch):
    monkeypatch.setattr(baseline_module, "MAX_BYTES", 1000)
    path = tmp_path / "b.json"
    path.write_bytes(b'{"version": 1, "secrets": {}}' + b" " * 1000)
    with pytest.raises(BaselineError, match="larger than"):
        load_baseline(path)


def test_real_cap_is_64_mib():
    assert baseline_module.MAX_BYTES == 64 * 1024 * 1024


@settings_tmp
@given(st.binary(max_size=300))
def test_garbage_bytes_never_escape_as_other_errors(tmp_path, data):
    path = tmp_path / "b.json"
    path.write_bytes(data)
    try:
        result = load_baseline(path)
    except BaselineError as exc:
        assert "\n" not in str(exc)
    else:
        assert isinstance(result, frozenset)


@settings_tmp
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(),
        lambda c: st.lists(c) | st.dictionaries(st.text(), c),
    )
)
def test_any_json_value_is_accepted_or_a_baseline_error(tmp_path, value):
    path = tmp_path / "b.json"
    path.write_text(json.dumps({"version": 1, "secrets": value}))
    try:
        result = load_baseline(path)
    except BaselineError as exc:
        assert "\n" not in str(exc)
    else:
        assert result == frozenset(value)
