"""The mail templates (``string.Template`` files beside this module) and the one-line rule for headers."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from string import Template


@cache
def template(name: str) -> Template:
    return Template(files("partner_endpoint.mail").joinpath("templates", name).read_text(encoding="utf-8"))


def one_line(text: str) -> str:
    """Control characters out: a label with a newline must not break (or inject) a mail header."""
    return " ".join("".join(ch if ch.isprintable() else " " for ch in text).split())
