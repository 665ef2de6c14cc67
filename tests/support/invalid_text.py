"""Hypothesis strategies for text that breaks naive handling: lone surrogates, NUL, line breaks, escapes.

``st.text()`` never draws surrogates (category Cs) unless asked; JSON's ``\\uXXXX`` escapes can
carry them into a parsed string, so strategies for alert fields must draw them on purpose.
"""

from __future__ import annotations

from hypothesis import strategies as st

SURROGATES = st.characters(categories=["Cs"])
TROUBLE = st.sampled_from(
    [
        "\x00",
        "\r",
        "\n",
        "\r\n",
        "\x1b",  # ESC: terminal escape sequences
        "\x1b[2J",
        "\x7f",
        "\x85",  # NEL, a C1 line break
        "\u2028",  # LINE SEPARATOR
        "\u202e",  # RIGHT-TO-LEFT OVERRIDE
        "\ufeff",
        "\ud800",
        "\udfff",
    ]
)


def invalid_text(max_size: int = 60) -> st.SearchStrategy[str]:
    """Strings mixing ordinary characters, lone surrogates and control or formatting characters."""
    return st.lists(st.characters() | SURROGATES | TROUBLE, max_size=max_size).map("".join)
