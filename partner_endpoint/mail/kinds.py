"""Every kind of mail the service sends, by the name stored in the outbox's ``kind`` column."""

from __future__ import annotations

from collections.abc import Mapping

from partner_endpoint.mail import leak_followup, leak_notice, sign_in_mail
from partner_endpoint.mail.letters import Kind

KINDS: Mapping[str, Kind] = {
    kind.name: kind for kind in (leak_notice.KIND, leak_followup.KIND, sign_in_mail.KIND)
}
