"""An API key's label: one rule wherever a label enters (the dashboard's form, ``keys create``). Pure.

A label is shown on the dashboard, on the terminal and in the leak mail, which shows it through
:func:`text.one_line`; a label that line would change (a control, format or direction-changing
character: a zero-width space, a BOM, a soft hyphen, a tag character, an override) reads as one
thing on one screen and as another elsewhere, so it is refused, not cleaned.
"""

from __future__ import annotations

from partner_endpoint.domain.display import FIELD_LIMIT, one_line

LABEL_LIMIT = FIELD_LIMIT


class LabelError(ValueError):
    """A label refused, and the sentence that says why (shown to whoever typed it)."""


def clean_label(value: str | None) -> str:
    """``value`` with its runs of whitespace made one space, if every screen shows it the same way."""
    label = " ".join((value or "").split())
    if not label:
        raise LabelError("Give the key a label, for example production-server.")
    if len(label) > LABEL_LIMIT:
        raise LabelError(f"Keep the label to {LABEL_LIMIT} characters or fewer.")
    if one_line(label, LABEL_LIMIT) != label:
        raise LabelError("The label holds characters that cannot be shown (control or invisible ones).")
    return label
