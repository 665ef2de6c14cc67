"""What GitHub's secret scanning partner onboarding needs from us."""

from __future__ import annotations

from rules.formats import FORMATS


def partner_patterns() -> list[dict[str, str]]:
    """For each token type: its name, its regular expression and a freshly minted example."""
    return [
        {
            "name": fmt.name,
            "description": fmt.description,
            "prefix": fmt.prefix,
            "regex": fmt.pattern,
            "example": fmt.mint(),
        }
        for fmt in FORMATS
    ]
