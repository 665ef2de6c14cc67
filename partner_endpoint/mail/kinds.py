"""Every kind of mail the service sends, by the name stored in the outbox's ``kind`` column."""

from __future__ import annotations

from collections.abc import Mapping

from partner_endpoint.mail import render, sign_in
from partner_endpoint.mail.letters import Kind

KINDS: Mapping[str, Kind] = {
    render.KIND: Kind(render.render_data),
    sign_in.KIND: Kind(sign_in.render_data, secret=True),
}
