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


def hidden_in_label(max_size: int = 20) -> st.SearchStrategy[str]:
    """A label that reads as ordinary text but holds a format character (Unicode category Cf: a
    zero-width space, a BOM, a soft hyphen, a tag character), which no screen or mail shows as such."""
    visible = st.text(st.characters(categories=["L", "N", "P", "S"]), max_size=max_size)
    invisible = st.characters(categories=["Cf"]) | st.sampled_from(
        ["\u200b", "\ufeff", "\u00ad", "\U000e0041"]
    )
    return st.tuples(visible, invisible, visible).map("".join)
