"""Driving the dashboard in-process as a browser would: forms, their hidden fields, the mailed link.

The sign-in link is read from the mail the real worker wrote (an ``.eml`` file), so these
helpers go through the same path a user does; nothing is taken from the database.
"""

from __future__ import annotations

import asyncio
import html
import re
from dataclasses import dataclass, field
from email import message_from_bytes, policy
from email.message import EmailMessage
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy import Engine

from partner_endpoint.mail.composer import Composer
from partner_endpoint.mail.transport import EmlDirectory
from partner_endpoint.mail.worker import MailWorker, mail_context
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.settings import Settings
from partner_endpoint.store.secretbox import SecretBox
from tests.support.partner import Clock, TestClient

PREFIX = "/dashboard"
_HIDDEN = re.compile(r'<input type="hidden" name="([a-z_]+)" value="([^"]*)">')
_LINK = re.compile(r"https?://\S+/sign-in/[A-Za-z0-9_-]+")


def hidden_fields(page: str) -> dict[str, str]:
    """The hidden inputs of the page's last form holding them, as a browser would submit them."""
    return {name: html.unescape(value) for name, value in _HIDDEN.findall(page)}


def page_text(page: str) -> str:
    """What a reader sees of a page: its text without tags, on one line."""
    return " ".join(html.unescape(re.sub(r"<[^>]*>", "", page)).split())


class _Rows(HTMLParser):
    """The text of each cell of one table's body, row by row."""

    def __init__(self, table_id: str) -> None:
        super().__init__()
        self.table_id = table_id
        self.rows: list[list[str]] = []
        self._depth = 0  # tables open since ours opened (ours is 1)
        self._in_body = False
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table" and (self._depth or dict(attrs).get("id") == self.table_id):
            self._depth += 1
        elif self._depth == 1 and tag == "tbody":
            self._in_body = True
        elif self._depth == 1 and self._in_body and tag == "tr":
            self.rows.append([])
        elif self._depth == 1 and self._in_body and tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "table" and self._depth:
            self._depth -= 1
        elif self._depth == 1 and tag == "tbody":
            self._in_body = False
        elif self._depth == 1 and tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def table_rows(page: str, table_id: str) -> list[list[str]]:
    """The cells' text of the body of the table ``id=table_id``, as a reader sees them (tags dropped)."""
    parser = _Rows(table_id)
    parser.feed(page)
    assert f'id="{table_id}"' in page, f"no table #{table_id} on the page"
    return parser.rows


def form_of(page: str, action: str) -> dict[str, str]:
    """The hidden inputs of the form that posts to ``action``."""
    start = page.index(f'action="{action}"')
    end = page.index("</form>", start)
    return hidden_fields(page[start:end])


@dataclass
class Mailbox:
    """Runs the real mail worker into an ``.eml`` folder and reads what it wrote."""

    engine: Engine
    settings: Settings
    box: SecretBox
    clock: Clock
    folder: Path
    seen: set[Path] = field(default_factory=set)

    def deliver(self) -> list[EmailMessage]:
        composer = Composer(mail_context(self.settings), self.box)
        worker = MailWorker(self.engine, EmlDirectory(self.folder), Metrics(), composer, clock=self.clock)
        asyncio.run(worker.run_once())
        fresh = sorted(set(self.folder.glob("*.eml")) - self.seen)
        self.seen.update(fresh)
        return [message_from_bytes(p.read_bytes(), policy=policy.default) for p in fresh]  # type: ignore[misc]


def text_of(message: EmailMessage) -> str:
    return message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def sign_in_link(message: EmailMessage) -> str:
    match = _LINK.search(text_of(message))
    assert match, text_of(message)
    return match.group(0)


@dataclass
class Browser:
    """A TestClient used like a browser on the dashboard."""

    client: TestClient
    mailbox: Mailbox

    def get(self, path: str, **kwargs: Any) -> Any:
        return self.client.get(path, follow_redirects=False, **kwargs)

    def post(self, path: str, data: dict[str, str], **kwargs: Any) -> Any:
        return self.client.post(path, data=data, follow_redirects=False, **kwargs)

    def request_link(self, email: str, next_path: str | None = None) -> Any:
        page = self.get(f"{PREFIX}/sign-in").text
        fields = form_of(page, f"{PREFIX}/sign-in") | {"email": email}
        if next_path:
            fields["next"] = next_path
        return self.post(f"{PREFIX}/sign-in", fields)

    def use_link(self, link: str) -> Any:
        page = self.get(urlsplit(link).path)
        assert page.status_code == 200, page.text
        return self.post(f"{PREFIX}/sign-in/confirm", form_of(page.text, f"{PREFIX}/sign-in/confirm"))

    def sign_in(self, email: str) -> Any:
        assert self.request_link(email).status_code == 303
        (message,) = self.mailbox.deliver()
        response = self.use_link(sign_in_link(message))
        assert response.status_code == 303, response.text
        return response

    def sign_out(self) -> Any:
        return self.post(f"{PREFIX}/sign-out", self.form(f"{PREFIX}/keys", f"{PREFIX}/sign-out"))

    def form(self, page_path: str, action: str) -> dict[str, str]:
        page = self.get(page_path)
        assert page.status_code == 200, page.text
        return form_of(page.text, action)

    def create_key(self, label: str) -> tuple[Any, str, str]:
        """The reveal page, the API key and the signing secret read off it."""
        fields = self.form(f"{PREFIX}/keys/new", f"{PREFIX}/keys") | {"label": label}
        response = self.post(f"{PREFIX}/keys", fields)
        assert response.status_code == 200, response.text
        return response, revealed(response.text, "api-key"), revealed(response.text, "signing-secret")

    def end(self, key_id: int, ending: str) -> Any:
        action = f"{PREFIX}/keys/{key_id}/{ending}"
        return self.post(action, self.form(action, action))


def revealed(page: str, element_id: str) -> str:
    match = re.search(rf'<code id="{element_id}"[^>]*>([^<]+)</code>', page)
    assert match, f"no #{element_id} on the page"
    return html.unescape(match.group(1))
