"""Whatever a browser (or anyone posing as one) sends the dashboard: a page or a 4xx, never a 5xx."""

from __future__ import annotations

import html
import re
import secrets
from collections.abc import Callable
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, assume, example, given, settings
from hypothesis import strategies as st
from sqlalchemy import Engine

from partner_endpoint.domain.display import one_line
from partner_endpoint.store.models import api_keys
from tests.support.dashboard import PREFIX, Browser, hidden_fields
from tests.support.invalid_text import hidden_in_label
from tests.support.partner import Issued, rows
from tests.support.services import ON_SQLITE

PROPERTIES = settings(
    max_examples=60,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
any_text = st.text(max_size=150)
email_shaped = st.builds("{}@{}.{}".format, st.text(min_size=1, max_size=30), any_text, st.text(max_size=10))
"""Addresses that pass a shape check more often than any text would: any local part, any domain."""
form_fields = st.dictionaries(st.text(max_size=20), st.text(max_size=60), max_size=6)


@pytest.fixture
def signed_in(browser: Browser, issue: Callable[..., Issued]) -> tuple[Browser, Issued, str]:
    issued = issue(email="owner@example.com")
    browser.sign_in("owner@example.com")
    token = hidden_fields(browser.get(f"{PREFIX}/keys/new").text)["csrf_token"]
    return browser, issued, token


@PROPERTIES
@given(label=any_text)
def test_any_label_gives_a_key_or_a_4xx(
    signed_in: tuple[Browser, Issued, str], engine: Engine, label: str
) -> None:
    browser, _issued, token = signed_in
    before = len(rows(engine, api_keys))
    response = browser.post(
        f"{PREFIX}/keys", {"csrf_token": token, "request_id": secrets.token_urlsafe(16), "label": label}
    )
    assert response.status_code in (200, 400), response.text
    created = rows(engine, api_keys)[before:]
    if response.status_code == 400:
        assert created == []
        return
    (key,) = created
    shown = re.search(r"<dt>Label</dt><dd class=\"break\">(.*?)</dd>", response.text, re.DOTALL)
    assert shown is not None
    assert "<" not in shown.group(1) and html.unescape(shown.group(1)) == key["label"]  # text, not markup
    assert set(key["label"]) - {" "} <= set(label)
    assert one_line(key["label"]) == key["label"]  # the leak mail shows the label the dashboard shows


@PROPERTIES
@given(label=hidden_in_label())
def test_a_label_with_an_invisible_character_is_refused(
    signed_in: tuple[Browser, Issued, str], engine: Engine, label: str
) -> None:
    """The leak mail (text.one_line) would show another label than the dashboard: refused, as by the CLI."""
    browser, _issued, token = signed_in
    before = rows(engine, api_keys)
    response = browser.post(
        f"{PREFIX}/keys", {"csrf_token": token, "request_id": secrets.token_urlsafe(16), "label": label}
    )
    assert response.status_code == 400 and "cannot be shown" in response.text
    assert rows(engine, api_keys) == before


@ON_SQLITE
@PROPERTIES
@given(
    path=st.sampled_from(["/keys", "/keys/1/rotate", "/keys/1/revoke", "/keys/1/delete", "/account"]),
    fields=form_fields,
    with_token=st.booleans(),
)
def test_any_form_fields_give_a_page_or_a_4xx(
    signed_in: tuple[Browser, Issued, str], path: str, fields: dict[str, str], with_token: bool
) -> None:
    browser, _issued, token = signed_in
    data = fields | {"csrf_token": token} if with_token else fields
    response = browser.post(f"{PREFIX}{path}", data)
    assert response.status_code < 500, response.text
    if not with_token and fields.get("csrf_token") != token:
        assert response.status_code == 403, response.headers.get("location")


@ON_SQLITE
@PROPERTIES
@given(
    path=st.sampled_from(["/keys", "/sign-in", "/sign-in/confirm", "/keys/1/delete", "/account"]),
    body=st.binary(max_size=400),
    content_type=st.sampled_from(
        ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain", ""]
    ),
)
def test_any_body_gives_a_page_or_a_4xx(
    signed_in: tuple[Browser, Issued, str], path: str, body: bytes, content_type: str
) -> None:
    browser, _issued, _token = signed_in
    response = browser.client.post(
        f"{PREFIX}{path}", content=body, headers={"Content-Type": content_type}, follow_redirects=False
    )
    assert 400 <= response.status_code < 500, response.text


@ON_SQLITE
@PROPERTIES
@given(q=any_text, status=any_text, order=any_text, page=any_text)
def test_any_list_options_give_the_list(
    signed_in: tuple[Browser, Issued, str], q: str, status: str, order: str, page: str
) -> None:
    browser, _issued, _token = signed_in
    response = browser.get(f"{PREFIX}/keys", params={"q": q, "status": status, "order": order, "page": page})
    assert response.status_code == 200


@ON_SQLITE
@PROPERTIES
@given(segment=any_text, action=st.sampled_from(["", "/rotate", "/revoke", "/delete"]))
def test_any_key_path_gives_a_page_or_404(
    signed_in: tuple[Browser, Issued, str], segment: str, action: str
) -> None:
    assume(segment not in (".", ".."))  # the client resolves dot segments: that is another path
    browser, issued, _token = signed_in
    response = browser.get(f"{PREFIX}/keys/{quote(segment, safe='')}{action}")
    expected = 200 if segment in (str(issued.key_id), "new") and (segment != "new" or not action) else 404
    assert response.status_code == expected, (segment, action)


@ON_SQLITE
@PROPERTIES
@given(email=st.one_of(any_text, email_shaped), next_path=any_text)
@example(email="josé@example.com", next_path="")  # not ASCII: once a 500
def test_any_sign_in_request_gives_a_page_or_a_4xx(
    browser: Browser, issue: Callable[..., Issued], engine: Engine, email: str, next_path: str
) -> None:
    response = browser.request_link(email, next_path=next_path or None)
    assert response.status_code in (303, 400, 429)
    if response.status_code == 303:
        assert response.headers["location"] == f"{PREFIX}/sign-in/sent"
