"""Developer → API keys: the list, a key's page, create (shown once), rotate, revoke, delete.

What happens to a key is :class:`~partner_endpoint.services.keys.KeyService`'s; these views read
forms and render. Every key is looked up through its owner address: an id that is not the
viewer's answers 404, exactly like an id that does not exist. A key of the address's other
account is shown with a note saying so: only the account switcher, a form, changes the account
a session shows.
"""

from __future__ import annotations

import logging
import secrets
from typing import Literal

from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response

import rules
from partner_endpoint.dashboard import present
from partner_endpoint.dashboard.forms import FormError, ListOptions, clean_label, nonce, whole_number
from partner_endpoint.dashboard.pages import PREFIX, Pages
from partner_endpoint.dashboard.session_auth import SessionAuth, Viewer
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.services.keys import KeyService
from partner_endpoint.services.traffic import TrafficService
from partner_endpoint.store.activity import Actor
from partner_endpoint.store.api_keys import KeyRecord
from partner_endpoint.web.clients import ClientAddresses

log = logging.getLogger(__name__)

PAGE_SIZE = 50

Ending = Literal["revoke", "delete"]


def _form_nonce() -> str:
    return secrets.token_urlsafe(16)


NO_SUCH_KEY = "There is no such key in your account. It may have been deleted."


class KeyPages:
    def __init__(
        self,
        keys: KeyService,
        traffic: TrafficService,
        auth: SessionAuth,
        pages: Pages,
        metrics: Metrics,
        clients: ClientAddresses,
    ) -> None:
        self._keys = keys
        self._traffic = traffic
        self._auth = auth
        self._pages = pages
        self._metrics = metrics
        self._clients = clients

    def _actor(self, request: Request, viewer: Viewer) -> Actor:
        return Actor(viewer.email, self._clients.bucket(request))

    # --- reading --------------------------------------------------------------------------------

    async def index(self, request: Request) -> Response:
        viewer = await self._auth.viewer(request)
        options = ListOptions.from_query(request.query_params)
        listing = await run_in_threadpool(
            self._keys.listing,
            viewer.account.account_id,
            text=options.text,
            status=options.status,
            order=options.order,
            page=options.page,
            size=PAGE_SIZE,
        )
        recent = await run_in_threadpool(self._traffic.recent, [k.key_id for k in listing.keys])
        context = {
            "keys": listing.keys,
            "recent": recent,
            "unused": {k.key_id for k in listing.keys if present.unused(k, self._pages.now())},
            "statuses": {
                k.key_id: present.status(k.status, listing.sightings.get(k.key_id, 0)) for k in listing.keys
            },
            "pager": listing.pager,
            "leaked": listing.leaked,
            "has_keys": listing.has_keys,
            "options": options,
        }
        return self._pages.render(request, "keys.html", context, viewer=viewer)

    async def show(self, request: Request) -> Response:
        viewer = await self._auth.viewer(request)
        key_id = whole_number(request.path_params["key_id"], 0)
        page = await run_in_threadpool(self._keys.page, key_id, viewer.email)
        if page is None:
            raise HTTPException(404, NO_SUCH_KEY)
        context = {
            "key": page.key,
            "state": present.status(page.key.status, len(page.sightings)),
            "sightings": page.sightings,
            "replaced_by": page.replaced_by,
            "replaces": page.replaces,
            "traffic": page.traffic,
            "replaces_traffic": page.replaces_traffic,
            "after": page.after,
        }
        return self._pages.render(request, "key.html", context, viewer=viewer)

    async def traffic(self, request: Request) -> Response:
        """A key's last use and last hour, for its rotation step to follow live (JSON, no-store).

        Read by a script every few seconds, not by the owner: it does not count as activity.
        """
        viewer = await self._auth.viewer(request, active=False)
        key = await self._owned(request, viewer)
        used = await run_in_threadpool(self._traffic.of_key, key.key_id)
        last = key.last_used_at
        now = self._pages.now()
        return JSONResponse(
            {
                "key_id": key.key_id,
                "last_used_at": None if last is None else last.isoformat(),
                "last_used": present.ago(last, now),
                "last_hour": used.last_hour,
                "at": now.isoformat(),
            }
        )

    async def _owned(self, request: Request, viewer: Viewer) -> KeyRecord:
        """The key named in the path if the viewer's address owns it, in whichever of its accounts."""
        key_id = whole_number(request.path_params["key_id"], 0)
        key = await run_in_threadpool(self._keys.owned, key_id, viewer.email)
        if key is None:
            raise HTTPException(404, NO_SUCH_KEY)
        return key

    async def _key_form(self, request: Request) -> tuple[Viewer, KeyRecord, dict[str, str]]:
        """A signed-in form (CSRF checked) about the key in the path, which the viewer must own."""
        viewer, form = await self._auth.signed_form(request)
        return viewer, await self._owned(request, viewer), form

    # --- creating: shown once -------------------------------------------------------------------

    async def new(self, request: Request) -> Response:
        viewer = await self._auth.viewer(request)
        context = {"label": "", "error": None, "request_id": _form_nonce()}
        return self._pages.render(request, "key_new.html", context, viewer=viewer)

    async def create(self, request: Request) -> Response:
        viewer, form = await self._auth.signed_form(request)
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
        viewer = await self._auth.viewer(request)
        key = await self._owned(request, viewer)
        used = await run_in_threadpool(self._traffic.of_key, key.key_id)
        context = {"key": key, "request_id": _form_nonce(), "traffic": used}
        return self._pages.render(request, "rotate.html", context, viewer=viewer)

    async def rotate(self, request: Request) -> Response:
        viewer, key, form = await self._key_form(request)
        return await self._mint(request, viewer, key.label, nonce(form.get("request_id")), key)

    async def _mint(
        self, request: Request, viewer: Viewer, label: str, request_id: str, replacing: KeyRecord | None
    ) -> Response:
        """Create the key and show it, once, in this response; a form sent again shows nothing new."""
        form_id = rules.identity(f"{viewer.session_id}:{request_id}")
        account_id = viewer.account.account_id if replacing is None else replacing.account_id
        made = await run_in_threadpool(
            self._keys.create,
            account_id,
            label,
            replacing=replacing,
            form=form_id,
            actor=self._actor(request, viewer),
        )
        if isinstance(made, int):
            return RedirectResponse(f"{PREFIX}/keys/{made}?done=already-created", status_code=303)
        change = "created" if replacing is None else "rotated"
        self._metrics.key_changes.labels(change=change).inc()
        log.info(
            f"dashboard key {change}",
            extra={
                "fields": {
                    "key_id": made.key.key_id,
                    "account_id": account_id,
                    "rotated_from": None if replacing is None else replacing.key_id,
                    "session_id": viewer.session_id,
                }
            },
        )
        context = {"new": made, "key": made.key, "replaced": made.replaced}
        return self._pages.render(request, "reveal.html", context, viewer=viewer)

    # --- ending: revoke, delete -----------------------------------------------------------------

    async def confirm_revoke(self, request: Request) -> Response:
        return await self._confirm(request, "revoke")

    async def confirm_delete(self, request: Request) -> Response:
        return await self._confirm(request, "delete")

    async def _confirm(self, request: Request, ending: Ending) -> Response:
        viewer = await self._auth.viewer(request)
        key = await self._owned(request, viewer)
        replaced_by = await run_in_threadpool(self._keys.replacements, key)
        context = {"key": key, "ending": ending, "replaced_by": replaced_by}
        return self._pages.render(request, "confirm.html", context, viewer=viewer)

    async def revoke(self, request: Request) -> Response:
        return await self._end(request, "revoke")

    async def delete(self, request: Request) -> Response:
        return await self._end(request, "delete")

    async def _end(self, request: Request, ending: Ending) -> Response:
        viewer, key, _form = await self._key_form(request)
        end = self._keys.delete if ending == "delete" else self._keys.revoke
        changed = await run_in_threadpool(end, key.key_id, self._actor(request, viewer))
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
                    "session_id": viewer.session_id,
                }
            },
        )
        target = (
            f"{PREFIX}/keys?done=deleted"
            if ending == "delete"
            else f"{PREFIX}/keys/{key.key_id}?done=revoked"
        )
        return RedirectResponse(target, status_code=303)
