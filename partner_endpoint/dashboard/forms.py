"""What the dashboard accepts from a browser: form bodies, labels, addresses, paths, list options.

Everything here is pure except :func:`read_form`, and everything refuses with
:class:`FormError` (a 4xx and a sentence) rather than guessing.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar, get_args
from urllib.parse import parse_qsl, urlencode

from starlette.requests import Request

import rules
from partner_endpoint.domain import labels
from partner_endpoint.store.api_keys import KeyOrder, StatusFilter
from partner_endpoint.web.bodies import BodyTooLarge, read_body

FORM_LIMIT = 16 * 1024
"""Bytes in a form body: our largest form is a label and three tokens."""
MAX_FIELDS = 16
EMAIL_LIMIT = 320
SEARCH_LIMIT = 100
MAX_ID = 2**31 - 1
"""Ids beyond a 32-bit integer name nothing (and PostgreSQL would refuse to compare them)."""

_NEXT = re.compile(r"/dashboard/keys(/[1-9][0-9]{0,9})?")
_NONCE = re.compile(r"[A-Za-z0-9_-]{16,64}")


class FormError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


async def read_form(request: Request) -> dict[str, str]:
    """An ``application/x-www-form-urlencoded`` body, UTF-8, each field once, at most ``FORM_LIMIT`` bytes.

    An empty body is an empty form, whatever its type: it then fails the CSRF check like any other.
    """
    try:
        body = await read_body(request, FORM_LIMIT)
    except BodyTooLarge:
        raise FormError(413, "The form is too large.") from None
    if not body:
        return {}
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != "application/x-www-form-urlencoded":
        raise FormError(415, "Send the form as the page does (application/x-www-form-urlencoded).")
    try:
        pairs = parse_qsl(
            body.decode("ascii"), keep_blank_values=True, max_num_fields=MAX_FIELDS, errors="strict"
        )
    except (UnicodeDecodeError, ValueError):
        raise FormError(400, "The form could not be read.") from None
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form:
            raise FormError(400, "The form could not be read.")
        form[name] = value
    return form


def _printable(text: str) -> bool:
    """No character that :func:`text.one_line` would not show as it is (they disguise what text says)."""
    return text.isprintable()


def clean_label(value: str | None) -> str:
    """:func:`labels.clean_label`, refused as a form's 400."""
    try:
        return labels.clean_label(value)
    except labels.LabelError as exc:
        raise FormError(400, str(exc)) from None


def clean_email(value: str | None) -> str:
    """An address as typed, checked only for shape (who owns it is never revealed here), in lower case."""
    email = (value or "").strip()
    local, at, domain = email.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or len(email) > EMAIL_LIMIT
        or any(ch.isspace() for ch in email)
        or not _printable(email)
    ):
        raise FormError(400, "Enter your email address, for example you@example.com.")
    return email.lower()


def safe_next(value: str | None) -> str | None:
    """Where to go after sign-in: a dashboard page of ours, never another site (``//evil``, ``https:``)."""
    return value if value and _NEXT.fullmatch(value) else None


def nonce(value: str | None) -> str:
    """The one-time id a creating form carries, so that submitting it twice creates one key."""
    if value is None or not _NONCE.fullmatch(value):
        raise FormError(400, "The form is incomplete. Go back and reload the page.")
    return value


def whole_number(value: str | None, default: int) -> int:
    """A positive id or page number; anything else (``-1``, ``1e9``, ``٣``) is ``default``."""
    if value and value.isascii() and value.isdigit() and len(value) <= 10 and 0 < int(value) <= MAX_ID:
        return int(value)
    return default


Choice = TypeVar("Choice", bound=str)


def _one_of(value: str | None, choices: tuple[Choice, ...], default: Choice) -> Choice:
    """``value`` if it is one of ``choices``, else ``default``."""
    return next((choice for choice in choices if choice == value), default)


@dataclass(frozen=True, slots=True)
class ListOptions:
    """The keys page's filter, order and page, from its query string; unknown values fall back."""

    text: str = ""
    status: StatusFilter = "all"
    order: KeyOrder = "newest"
    page: int = 1

    @classmethod
    def from_query(cls, query: Mapping[str, str]) -> ListOptions:
        text = " ".join(query.get("q", "").split())[:SEARCH_LIMIT]
        if not _printable(text):
            text = ""
        elif rules.recognise(text) is not None:
            text = text[-4:]  # a whole key pasted in: search by its last four, never echo it back
        return cls(
            text=text,
            status=_one_of(query.get("status"), get_args(StatusFilter), "all"),
            order=_one_of(query.get("order"), get_args(KeyOrder), "newest"),
            page=whole_number(query.get("page"), 1),
        )

    def query(self, **changes: object) -> str:
        """This list's query string with ``changes``; defaults left out, so links stay short."""
        values = {"q": self.text, "status": self.status, "order": self.order, "page": self.page} | changes
        defaults = {"q": "", "status": "all", "order": "newest", "page": 1}
        kept = {k: v for k, v in values.items() if v != defaults[k]}
        return "?" + urlencode(kept) if kept else ""
