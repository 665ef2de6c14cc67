"""Developer → API keys: the list, a key's page, create (shown once), rotate, revoke, delete.

Every key is looked up through its owner address (:func:`keys.owned_key`): an id
that is not the viewer's answers 404, exactly like an id that does not exist.
Revocations and deletions go through the store's ``revoke_key``, and
``key_changed`` is called after each commits, so every process stops accepting
the key at once (the API's auth cache listens).
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

import rules
from partner_endpoint.dashboard import present
from partner_endpoint.dashboard.forms import FormError, ListOptions, clean_label, nonce, whole_number
from partner_endpoint.dashboard.pages import PREFIX, Pages
from partner_endpoint.dashboard.session_auth import SessionAuth, Viewer
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.store import keys, leaks
from partner_endpoint.store.db import read_transaction, write_transaction
from partner_endpoint.store.secretbox import SecretBox

log = logging.getLogger(__name__)

PAGE_SIZE = 50

Ending = Literal["revoke", "delete"]


@dataclass(frozen=True, slots=True)
class Created:
    new: keys.NewKey
    key: keys.KeyRecord
    replaced: keys.KeyRecord | None


def _form_nonce() -> str:
    return secrets.token_urlsafe(16)


class KeyPages:
    def __init__(
        self,
        engine: Engine,
        box: SecretBox,
        clock: Callable[[], datetime],
        metrics: Metrics,
        auth: SessionAuth,
        pages: Pages,
        key_changed: Callable[[int], None],
    ) -> None:
        self._engine = engine
        self._box = box
        self._clock = clock
        self._metrics = metrics
        self._auth = auth
        self._pages = pages
        self._key_changed = key_changed

    # --- reading --------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        viewer = await self._auth.page_viewer(request)
        if isinstance(viewer, Response):
            return viewer
        options = ListOptions.from_query(request.query_params)
        context = await run_in_threadpool(self._index, viewer.account.account_id, options)
        return self._pages.render(request, "keys.html", {**context, "options": options}, viewer=viewer)

    def _index(self, account_id: int, options: ListOptions) -> dict[str, object]:
        with read_transaction(self._engine) as conn:

            def page_at(page: int) -> keys.KeyPage:
                return keys.key_page(
                    conn,
                    account_id,
                    text=options.text,
                    status=options.status,
                    order=options.order,
                    offset=(page - 1) * PAGE_SIZE,
                    limit=PAGE_SIZE,
                )

            found = page_at(options.page)
            pager = present.pages(found.total, options.page, PAGE_SIZE)
            if pager.page != options.page:  # past the last page: show the last one
                found = page_at(pager.page)
            counts = leaks.sighting_counts(conn, [k.key_id for k in found.keys])
            leaked = keys.leaked_keys(conn, account_id)
            # "No keys yet" or "no keys match": only an empty filtered list needs the unfiltered count.
            narrowed = bool(options.text) or options.status != "all"
            has_keys = found.total > 0 or (narrowed and keys.key_page(conn, account_id, limit=0).total > 0)
        return {
            "keys": found.keys,
            "statuses": {k.key_id: present.status(k.status, counts.get(k.key_id, 0)) for k in found.keys},
            "pager": pager,
            "leaked": leaked,
            "has_keys": has_keys,
        }

    async def show(self, request: Request) -> Response:
        found = await self._owned(request)
        if isinstance(found, Response):
            return found
        viewer, key = found
        context = await run_in_threadpool(self._details, key)
        return self._pages.render(request, "key.html", context, viewer=viewer)

    def _details(self, key: keys.KeyRecord) -> dict[str, object]:
        with read_transaction(self._engine) as conn:
            sightings = leaks.sightings_of(conn, key.key_id)
            replaced_by = keys.replacements(conn, key.key_id)
            replaces = None if key.rotated_from is None else keys.visible_key(conn, key.rotated_from)
        return {
            "key": key,
            "state": present.status(key.status, len(sightings)),
            "sightings": sightings,
            "replaced_by": replaced_by,
            "replaces": replaces,
        }

    async def _owned(self, request: Request) -> tuple[Viewer, keys.KeyRecord] | Response:
        viewer = await self._auth.page_viewer(request)
        if isinstance(viewer, Response):
            return viewer
        return await self._owned_by(request, viewer)

    async def _owned_by(self, request: Request, viewer: Viewer) -> tuple[Viewer, keys.KeyRecord] | Response:
        """The key named in the path if the viewer's address owns it, in whichever of its accounts.

        The session keeps the account it shows (only the switcher, a POST, changes it): a key of
        the address's other account is shown with a note saying so, and a form to switch.
        """
        key_id = whole_number(request.path_params["key_id"], 0)
        key = await run_in_threadpool(self._find, key_id, viewer)
        if key is None:
            return self._pages.message(
                request,
                404,
                "Key not found",
                "There is no such key in your account. It may have been deleted.",
                viewer=viewer,
                link=(f"{PREFIX}/keys", "Back to API keys"),
            )
        return viewer, key

    async def _key_form(self, request: Request) -> tuple[Viewer, keys.KeyRecord, dict[str, str]] | Response:
        """A signed-in form (CSRF checked) about the key in the path, which the viewer must own."""
        posted = await self._auth.signed_form(request)
        if isinstance(posted, Response):
            return posted
        viewer, form = posted
        found = await self._owned_by(request, viewer)
        if isinstance(found, Response):
            return found
        return (*found, form)

    def _find(self, key_id: int, viewer: Viewer) -> keys.KeyRecord | None:
        if not key_id:
            return None
        with read_transaction(self._engine) as conn:
            return keys.owned_key(conn, key_id, viewer.email)

    # --- creating: shown once -------------------------------------------------------------------

    async def new(self, request: Request) -> Response:
        viewer = await self._auth.page_viewer(request)
        if isinstance(viewer, Response):
            return viewer
        context = {"label": "", "error": None, "request_id": _form_nonce()}
        return self._pages.render(request, "key_new.html", context, viewer=viewer)

    async def create(self, request: Request) -> Response:
        posted = await self._auth.signed_form(request)
        if isinstance(posted, Response):
            return posted
        viewer, form = posted
        try:
            label = clean_label(form.get("label"))
            request_id = nonce(form.get("request_id"))
        except FormError as exc:
            context = {
                "label": form.get("label", "")[:200],
                "error": exc.message,
                "request_id": form.get("request_id") or _form_nonce(),
            }
            return self._pages.render(request, "key_new.html", context, viewer=viewer, status=exc.status)
        return await self._mint(request, viewer, label, request_id, None)

    async def rotate_page(self, request: Request) -> Response:
        found = await self._owned(request)
        if isinstance(found, Response):
            return found
        viewer, key = found
        context = {"key": key, "request_id": _form_nonce()}
        return self._pages.render(request, "rotate.html", context, viewer=viewer)

    async def rotate(self, request: Request) -> Response:
        posted = await self._key_form(request)
        if isinstance(posted, Response):
            return posted
        viewer, key, form = posted
        try:
            request_id = nonce(form.get("request_id"))
        except FormError as exc:
            return self._pages.message(request, exc.status, "That did not work", exc.message, viewer=viewer)
        return await self._mint(request, viewer, key.label, request_id, key)

    async def _mint(
        self, request: Request, viewer: Viewer, label: str, request_id: str, replacing: keys.KeyRecord | None
    ) -> Response:
        """Create the key and show it, once, in this response; a form sent again shows nothing new."""
        form_id = rules.identity(f"{viewer.session.session_id}:{request_id}")
        account_id = viewer.account.account_id if replacing is None else replacing.account_id
        outcome = await run_in_threadpool(self._create, account_id, label, form_id, replacing)
        if isinstance(outcome, int):
            return RedirectResponse(f"{PREFIX}/keys/{outcome}?done=already-created", status_code=303)
        change = "created" if replacing is None else "rotated"
        self._metrics.key_changes.labels(change=change).inc()
        log.info(
            f"dashboard key {change}",
            extra={
                "fields": {
                    "key_id": outcome.key.key_id,
                    "account_id": account_id,
                    "rotated_from": None if replacing is None else replacing.key_id,
                    "session_id": viewer.session.session_id,
                }
            },
        )
        context = {"new": outcome.new, "key": outcome.key, "replaced": outcome.replaced}
        return self._pages.render(request, "reveal.html", context, viewer=viewer)

    def _create(
        self, account_id: int, label: str, form_id: str, replacing: keys.KeyRecord | None
    ) -> Created | int:
        now = self._clock()
        try:
            with write_transaction(self._engine) as conn:
                if (earlier := keys.created_by(conn, form_id)) is not None:
                    return earlier
                new = keys.create_key(
                    conn,
                    self._box,
                    account_id,
                    label,
                    now,
                    rotated_from=None if replacing is None else replacing.key_id,
                    request=form_id,
                )
                key = keys.visible_key(conn, new.key_id)
                replaced = None if replacing is None else keys.visible_key(conn, replacing.key_id)
        except IntegrityError:  # the same form, sent twice at once: the other request created the key
            with read_transaction(self._engine) as conn:
                earlier = keys.created_by(conn, form_id)
            if earlier is None:
                raise
            return earlier
        assert key is not None
        return Created(new, key, replaced)

    # --- ending: revoke, delete -----------------------------------------------------------------

    async def confirm_revoke(self, request: Request) -> Response:
        return await self._confirm(request, "revoke")

    async def confirm_delete(self, request: Request) -> Response:
        return await self._confirm(request, "delete")

    async def _confirm(self, request: Request, ending: Ending) -> Response:
        found = await self._owned(request)
        if isinstance(found, Response):
            return found
        viewer, key = found
        context = {
            "key": key,
            "ending": ending,
            "replaced_by": await run_in_threadpool(self._replacements, key),
        }
        return self._pages.render(request, "confirm.html", context, viewer=viewer)

    def _replacements(self, key: keys.KeyRecord) -> list[keys.KeyRecord]:
        with read_transaction(self._engine) as conn:
            return keys.replacements(conn, key.key_id)

    async def revoke(self, request: Request) -> Response:
        return await self._end(request, "revoke")

    async def delete(self, request: Request) -> Response:
        return await self._end(request, "delete")

    async def _end(self, request: Request, ending: Ending) -> Response:
        posted = await self._key_form(request)
        if isinstance(posted, Response):
            return posted
        viewer, key, _form = posted
        changed = await run_in_threadpool(self._apply, key.key_id, ending)
        self._key_changed(key.key_id)  # after the commit: every process drops the key now
        past = "revoked" if ending == "revoke" else "deleted"
        if changed:
            self._metrics.key_changes.labels(change=past).inc()
        log.info(
            f"dashboard key {past}",
            extra={
                "fields": {
                    "key_id": key.key_id,
                    "account_id": key.account_id,
                    "changed": changed,
                    "session_id": viewer.session.session_id,
                }
            },
        )
        target = (
            f"{PREFIX}/keys?done=deleted"
            if ending == "delete"
            else f"{PREFIX}/keys/{key.key_id}?done=revoked"
        )
        return RedirectResponse(target, status_code=303)

    def _apply(self, key_id: int, ending: Ending) -> bool:
        now = self._clock()
        with write_transaction(self._engine) as conn:
            if ending == "delete":
                return keys.delete_key(conn, key_id, now)
            return keys.revoke_key(conn, key_id, now)
