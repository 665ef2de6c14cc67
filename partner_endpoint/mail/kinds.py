"""Every kind of mail the service sends, by the name stored in the outbox's ``kind`` column."""

from __future__ import annotations

from collections.abc import Mapping

from partner_endpoint.mail import leak_notice, sign_in_mail
from partner_endpoint.mail.letters import Kind

KINDS: Mapping[str, Kind] = {
    leak_notice.KIND: Kind(leak_notice.render_data),
    sign_in_mail.KIND: Kind(sign_in_mail.render_data, secret=True),
}
