"""The mail templates (``string.Template`` files beside this module); text in them goes through
:func:`partner_endpoint.domain.display.one_line`."""

from __future__ import annotations

from functools import cache
from importlib.resources import files
from string import Template


@cache
def template(name: str) -> Template:
    return Template(files("partner_endpoint.mail").joinpath("templates", name).read_text(encoding="utf-8"))
