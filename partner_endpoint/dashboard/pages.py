"""Rendering: the Jinja2 environment (autoescaped, strict), what every page gets, message pages."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Mapping
from datetime import datetime
from importlib.resources import files
from typing import Any

import jinja2
from starlette.requests import Request
from starlette.responses import Response
from starlette.templating import Jinja2Templates

from partner_endpoint.api.traffic import OTHER
from partner_endpoint.clock import Clock
from partner_endpoint.dashboard import charts, present
from partner_endpoint.domain.reported_by import reported_by
from partner_endpoint.services.traffic import UNUSED_AFTER

PREFIX = "/dashboard"
STATIC = f"{PREFIX}/static"

NOTICES = {
    "deleted": "Key deleted. Requests with it are refused from now on.",
    "revoked": "Key revoked. Requests with it are refused from now on.",
    "signed-out": "You are signed out.",
    "already-created": (
        "That form was already sent, so no second key was made. "
        "Its values were shown once, when it was created."
    ),
}
"""Messages a redirect may ask for by name (``?done=deleted``): never text from the URL itself."""


def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("partner_endpoint.dashboard", "templates"),
        autoescape=True,  # every template, whatever its name: labels and alert URLs are hostile input
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.globals.update(
        ago=present.ago,
        exact=present.exact,
        when=present.when,
        exactly=present.exactly,
        badge=present.badge,
        redacted=present.redacted,
        status=present.status,
        action=present.action,
        source=present.source,
        reported_by=reported_by,
        token_kind=present.token_kind,
        is_web_link=present.is_web_link,
        shown_url=present.shown_url,
        counted=present.counted,
        warning_icon=present.WARNING_ICON,
        other_address=OTHER,
        unused_days=UNUSED_AFTER.days,
        activity=present.activity,
        actor=present.actor,
        allowlist_change=present.allowlist_change,
        week_chart=charts.week,
        hour_chart=charts.last_hour,
        chart=charts.chart,
        prefix=PREFIX,
    )
    return env


def _static_versions() -> dict[str, str]:
    """Content hashes for cache busting: a new stylesheet reaches browsers that cached the old one."""
    folder = files("partner_endpoint.dashboard").joinpath("static")
    return {
        entry.name: hashlib.sha256(entry.read_bytes()).hexdigest()[:12]
        for entry in folder.iterdir()
        if entry.is_file()
    }


class Pages:
    def __init__(self, clock: Clock, docs_url: str, *, live_every: float = 10.0) -> None:
        """``live_every``: seconds between the live figures' updates (traffic is no fresher than its
        flush interval, so polling faster would only fetch the same numbers)."""
        env = _environment()
        env.globals["docs_url"] = docs_url
        env.globals["live_every"] = max(2, round(live_every))
        self._templates = Jinja2Templates(env=env)
        self._clock = clock
        versions = _static_versions()
        self._static: Callable[[str], str] = lambda name: f"{STATIC}/{name}?v={versions[name]}"

    def now(self) -> datetime:
        return self._clock.now()

    def render(
        self,
        request: Request,
        name: str,
        context: Mapping[str, Any] | None = None,
        *,
        status: int = 200,
        viewer: Any = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        done = request.query_params.get("done", "")
        values = {
            "viewer": viewer,
            "now": self._clock.now(),
            "static": self._static,
            "notice": NOTICES.get(done),
            **(context or {}),
        }
        return self._templates.TemplateResponse(request, name, values, status_code=status, headers=headers)

    def message(
        self,
        request: Request,
        status: int,
        title: str,
        text: str,
        *,
        viewer: Any = None,
        link: tuple[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """A page that says one thing (an error, an expired link) and offers one way on."""
        context = {"title": title, "text": text, "link": link}
        return self.render(request, "message.html", context, status=status, viewer=viewer, headers=headers)
