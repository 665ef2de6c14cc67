"""The Activity page: what happened to the account's keys, sessions and allowlist, newest first."""

from __future__ import annotations

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response

from partner_endpoint.dashboard.forms import whole_number
from partner_endpoint.dashboard.pages import Pages
from partner_endpoint.dashboard.session_auth import SessionAuth
from partner_endpoint.services.activity import ActivityService

PAGE_SIZE = 50


class ActivityPages:
    def __init__(self, activity: ActivityService, auth: SessionAuth, pages: Pages) -> None:
        self._activity = activity
        self._auth = auth
        self._pages = pages

    async def index(self, request: Request) -> Response:
        viewer = await self._auth.viewer(request)
        page = whole_number(request.query_params.get("page"), 1)
        account_id = viewer.account.account_id
        entries, pager = await run_in_threadpool(self._activity.page, account_id, page, PAGE_SIZE)
        keys = await run_in_threadpool(self._activity.key_names, account_id, entries)
        return self._pages.render(
            request, "activity.html", {"entries": entries, "pager": pager, "keys": keys}, viewer=viewer
        )
