"""The engine: bytes in, checksum-valid matches out, whatever the chunking."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from packaging.requirements import Requirement

import rules
from scanner.engine import Engine, Match
from scanner.engine.engine import bytes_reader


def hyperscan_is_a_dependency() -> bool:
    """Whether pyproject.toml installs hyperscan on this platform (then it must be used, not skipped)."""
    project = tomllib.loads((Path(__file__).resolve().parents[2] / "pyproject.toml").read_text())["project"]
    for line in project["dependencies"]:
        requirement = Requirement(line)
        if requirement.name == "hyperscan":
            return requirement.marker is None or requirement.marker.evaluate()
    return False


BACKENDS = ["regex", *(["hyperscan"] if hyperscan_is_a_dependency() else [])]
VALID = "spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdL"
VALID_WHSEC = "whsec_abcdefghijklmnopqrstuvwxyz0123451nc0VA"


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return request.param


def matches_in(engine: Engine, data: bytes) -> list[Match]:
    """The engine's matches in ``data``, read as archive members are (through ``bytes_reader``)."""
    return engine.scan(bytes_reader(data))[0]


def scan(data: bytes, backend: str = "hyperscan", chunk: int = 1 << 20) -> list[Match]:
    return matches_in(Engine(chunk_size=chunk, backend=backend), data)


@pytest.mark.parametrize(
    "text",
    [
        f"KEY={VALID}",
        f'"{VALID}"',
        f"{VALID}\r\n",
        f"https://x.test/?key={VALID}&a=1",
        f'{{"k":"{VALID}"}}',
        f"x{VALID}y",  # glued on both sides
        f"abc{VALID}",
    ],
)
def test_found_anywhere(text: str, backend: str) -> None:
    matches = scan(text.encode(), backend)
    assert [m.secret.decode() for m in matches] == [VALID]
    assert matches[0].type == "soundpiece_api_key"
    assert matches[0].offset == text.index(VALID)


@pytest.mark.parametrize(
    "decoy",
    [
        VALID[:-1] + "M",
        VALID[:-1],
        "spk_<your-key>",
        "whsec_" + "A" * 32,  # Stripe/Svix style
        "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
        "whsec_dGhpcyBpcyBhIHN2aXggc2VjcmV0IHZhbHVlIQ==",
    ],
)
def test_decoys_not_reported(decoy: str, backend: str) -> None:
    assert scan(f"token = {decoy}\n".encode(), backend) == []


def test_line_and_column_crlf_and_unicode(backend: str) -> None:
    data = f"first\r\nsecond é line {VALID}\r\nthird {VALID_WHSEC}".encode()
    matches = scan(data, backend)
    assert [(m.type, m.line, m.column) for m in matches] == [
        ("soundpiece_api_key", 2, 15),
        ("soundpiece_webhook_secret", 3, 7),
    ]
    assert matches[0].line_text == f"second é line {VALID}".encode()


def test_binary_data(backend: str) -> None:
    data = bytes(range(256)) * 10 + VALID.encode() + b"\x00\xff" * 100
    assert [m.offset for m in scan(data, backend)] == [2560]


def test_minified_line_3mb(backend: str) -> None:
    filler = b"a=1;" * (3 * 1024 * 1024 // 4)
    data = filler + VALID.encode() + filler
    matches = scan(data, backend, chunk=1 << 20)
    assert [(m.line, m.column, m.offset) for m in matches] == [(1, len(filler) + 1, len(filler))]


def test_inner_prefix_overlapping_candidates(backend: str) -> None:
    # A valid key whose text contains another prefix: both candidates checked, one reported.
    data = ("whsec_" + VALID).encode()
    assert [m.secret.decode() for m in scan(data, backend)] == [VALID]


def test_empty_input() -> None:
    assert matches_in(Engine(), b"") == []


@settings(max_examples=150, deadline=None)
@given(
    prefix=st.binary(max_size=3000),
    suffix=st.binary(max_size=300),
    fmt=st.sampled_from(rules.FORMATS),
    chunk=st.integers(min_value=1, max_value=5000),
    backend=st.sampled_from(BACKENDS),
)
def test_planted_token_found_at_any_offset_and_chunk_size(prefix, suffix, fmt, chunk, backend) -> None:
    token = fmt.mint().encode()
    data = prefix + token + suffix
    matches = matches_in(Engine(chunk_size=chunk, backend=backend), data)
    planted = [m for m in matches if m.offset == len(prefix)]
    assert len(planted) == 1
    assert planted[0].secret == token
    assert planted[0].line == prefix.count(b"\n") + 1
    # Nothing else is reported unless the random bytes happen to hold a valid token.
    assert all(rules.recognise(m.secret) for m in matches)
    assert len({m.offset for m in matches}) == len(matches)


@settings(max_examples=150, deadline=None)
@given(
    body=st.text(alphabet=rules.BASE62.decode(), min_size=38, max_size=38),
    fmt=st.sampled_from(rules.FORMATS),
    noise=st.binary(max_size=200),
    chunk=st.integers(min_value=1, max_value=300),
)
def test_wrong_checksum_never_reported(body, fmt, noise, chunk) -> None:
    token = fmt.prefix + body
    data = noise + token.encode() + noise
    found = matches_in(Engine(chunk_size=chunk), data)
    assert all(rules.recognise(m.secret) for m in found)
    if rules.recognise(token) is None:
        assert token.encode() not in {m.secret for m in found}


def test_many_tokens_across_many_chunks() -> None:
    tokens = [rules.API_KEY.mint().encode() for _ in range(200)]
    data = b"\n".join(b"x" * (i * 37 % 500) + t for i, t in enumerate(tokens))
    for chunk in (50, 997, 4096):
        found = matches_in(Engine(chunk_size=chunk), data)
        assert [m.secret for m in found] == tokens
        assert [m.line for m in found] == list(range(1, 201))


@settings(max_examples=100, deadline=None)
@given(
    lines=st.lists(st.text(alphabet="ab é\r", max_size=300), min_size=1, max_size=40),
    where=st.data(),
    chunk=st.integers(min_value=50, max_value=2000),
)
def test_second_line_pass_agrees_with_counting(lines, where, chunk) -> None:
    """With ``reopen``, lines/columns come from a second pass; they must equal the one-pass ones."""
    token = rules.API_KEY.mint()
    row = where.draw(st.integers(0, len(lines) - 1))
    col = where.draw(st.integers(0, len(lines[row])))
    lines[row] = lines[row][:col] + token + lines[row][col:]
    data = "\n".join(lines).encode()

    def reader():
        return bytes_reader(data)

    engine = Engine(chunk_size=chunk)
    counted, _ = engine.scan(reader())
    relocated, size = engine.scan(reader(), reopen=reader)
    assert size == len(data)
    assert [(m.offset, m.line, m.column) for m in relocated] == [
        (m.offset, m.line, m.column) for m in counted
    ]
    planted = [m for m in counted if m.secret == token.encode()]
    assert [(m.line, m.column) for m in planted] == [(row + 1, len(lines[row][:col]) + 1)]


# --- the compiled pattern database, cached between runs -----------------------------------------


def test_hyperscan_database_is_cached_and_a_damaged_cache_is_compiled_again(tmp_path, monkeypatch):
    from scanner.engine.patterns import HyperscanMatcher, cache_dir

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    token = b"x=spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdL;"
    patterns = [fmt.pattern for fmt in rules.FORMATS]
    expected = HyperscanMatcher(patterns).candidates(memoryview(token))
    assert expected == [(0, len(token) - 1)]
    (cached,) = Path(cache_dir()).glob("hyperscan-*.db")
    first = cached.read_bytes()
    assert HyperscanMatcher(patterns).candidates(memoryview(token)) == expected  # loaded, not compiled
    assert cached.read_bytes() == first
    cached.write_bytes(first[:100] + b"\xff" * 50 + first[150:])  # damaged: refused, compiled again
    assert HyperscanMatcher(patterns).candidates(memoryview(token)) == expected
    assert cached.read_bytes() == first
    other = HyperscanMatcher([patterns[0]])  # other patterns: another file, never the first one
    assert len(list(Path(cache_dir()).glob("hyperscan-*.db"))) == 2
    assert other.candidates(memoryview(token)) == expected


def test_an_unwritable_cache_only_costs_a_compile(tmp_path, monkeypatch):
    from scanner.engine.patterns import HyperscanMatcher

    blocked = tmp_path / "file-not-dir"
    blocked.write_text("")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    token = b"spk_0123456789ABCDEFGHIJKLMNOPQRSTUV1ggZdL"
    assert HyperscanMatcher([rules.API_KEY.pattern]).candidates(memoryview(token)) == [(0, len(token))]
