"""The sign-in mail: a whole link in the raw ``.eml`` (the quick start greps it), sent without waiting."""

from __future__ import annotations

import asyncio
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import Engine

from partner_endpoint.mail.composer import Composer
from partner_endpoint.mail.sign_in_mail import SignInMail, render
from partner_endpoint.mail.transport import EmlDirectory
from partner_endpoint.mail.worker import MailWorker, mail_context
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.settings import Settings
from partner_endpoint.store import outbox
from partner_endpoint.store.db import write_transaction
from partner_endpoint.store.models import mail_outbox
from partner_endpoint.store.secretbox import SecretBox
from tests.support.partner import Clock, rows

TOKEN = "Aa0_-" * 8 + "xyz"


def test_the_link_is_whole_on_one_line_of_the_raw_message() -> None:
    now = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
    mail = SignInMail("o@example.com", TOKEN, now, now + timedelta(minutes=15))
    raw = render(
        mail, sender="s@example.com", dashboard_url="https://dash.example.com/dashboard/"
    ).as_string()
    assert f"\nhttps://dash.example.com/dashboard/sign-in/{TOKEN}\n" in raw
    assert "for 15 minutes" in raw and TOKEN not in repr(mail)
    # Every part, the HTML one too: a grep of the file must never find a link that quoted-printable
    # cut with a soft line break (it then "was already used or is over 15 minutes old").
    found = re.findall(r"dashboard/sign-in/[A-Za-z0-9_=-]*", raw)
    assert found == [f"dashboard/sign-in/{TOKEN}"] * 2  # the text part and the HTML link


def test_a_nudge_sends_the_mail_before_the_next_poll(
    engine: Engine, settings: Settings, box: SecretBox, clock: Clock, tmp_path: Path
) -> None:
    folder = tmp_path / "sent"
    worker = MailWorker(
        engine,
        EmlDirectory(folder),
        Metrics(),
        Composer(mail_context(settings), box),
        poll_interval=3600,
        clock=clock,
    )

    async def scenario() -> list[Path]:
        stop = asyncio.Event()
        running = asyncio.create_task(worker.run_forever(stop))
        await asyncio.sleep(0.2)  # the first round found nothing: the worker now waits an hour
        mail = SignInMail("o@example.com", TOKEN, clock.now(), clock.now() + timedelta(minutes=15))
        with write_transaction(engine) as conn:
            outbox.enqueue(conn, [mail.letter(box)], sender=settings.mail_from, now=clock.now())
        worker.nudge()
        while not list(folder.glob("*.eml")):
            await asyncio.sleep(0.05)
        stop.set()
        await running
        return list(folder.glob("*.eml"))

    (sent,) = asyncio.run(asyncio.wait_for(scenario(), timeout=60))
    assert re.search(rf"/dashboard/sign-in/{re.escape(TOKEN)}\n", sent.read_text())
    (row,) = rows(engine, mail_outbox)
    assert row["status"] == "sent" and row["payload"] is None  # and the link's data erased
