import pytest

from scanner.filters import drop_suppressed
from scanner.filters.inline import INLINE_MARKER, is_allowed_inline


@pytest.mark.parametrize(
    ("line_text", "allowed"),
    [
        (b"KEY = 'spk_...'  # soundpiece-scan: allow", True),
        (b"// soundpiece-scan: allow\tconst k = 'spk_...'", True),
        (b"<!-- soundpiece-scan: allow --> spk_...", True),
        (b"KEY = 'spk_...'", False),
        (b"KEY = 'spk_...'  # soundpiece-scan allow", False),
        (b"KEY = 'spk_...'  # Soundpiece-Scan: Allow", False),
        (b"", False),
    ],
)
def test_marker_anywhere_on_the_line(finding, line_text, allowed):
    assert is_allowed_inline(finding(line_text=line_text)) is allowed


def test_marker_constant():
    assert INLINE_MARKER == b"soundpiece-scan: allow"


def test_drop_suppressed_applies_inline_and_baseline_in_order(finding):
    plain = [finding(line=n) for n in (1, 2, 3)]
    inline = finding(line=4, line_text=b"x  # soundpiece-scan: allow")
    baselined = finding(line=5)
    findings = [plain[0], inline, plain[1], baselined, plain[2]]
    kept, suppressed = drop_suppressed(findings, frozenset({baselined.secret_sha256}))
    assert kept == plain
    assert suppressed == 2


def test_drop_suppressed_accepts_any_iterable(finding):
    findings = [finding(), finding()]
    kept, suppressed = drop_suppressed(iter(findings))
    assert (kept, suppressed) == (findings, 0)
