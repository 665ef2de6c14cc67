"""Leak notification mail: rendering, the outbox, the worker with a real SMTP server, the .eml fallback."""

from __future__ import annotations

import asyncio
import datetime as dt
import ipaddress
import logging
from collections.abc import Callable
from email import message_from_bytes, message_from_string, policy
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from sqlalchemy import Engine, text

from partner_endpoint.mail.backoff import backoff_seconds
from partner_endpoint.mail.composer import Composer
from partner_endpoint.mail.leak_notice import render
from partner_endpoint.mail.letters import Kind, MailContext, letter
from partner_endpoint.mail.transport import Delivery, EmlDirectory, SmtpTransport, transport_for
from partner_endpoint.mail.worker import MailWorker
from partner_endpoint.ops.logs import JsonFormatter
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.settings import Settings
from partner_endpoint.store import outbox
from partner_endpoint.store.db import make_engine, write_transaction
from partner_endpoint.store.leaks import KeyLeak
from partner_endpoint.store.migrate import migrate
from partner_endpoint.store.models import mail_outbox
from partner_endpoint.store.secretbox import SecretBox
from tests.support.github import Signer, alert_body, post_alert
from tests.support.partner import Clock, Issued, TestClient, report_leak, rows, scrape
from tests.support.processes import HANG_GUARD, free_port, wait_for
from tests.support.services import SmtpSink

SENDER = "Soundpiece Security <security@soundpiece.test>"


# --- a certificate for the SMTP server -------------------------------------------------------------


def self_signed(tmp_path: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = dt.datetime.now(dt.UTC)
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=1))
        .add_extension(
            x509.SubjectAlternativeName(
                [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
            ),
            critical=False,
        )
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
        .add_extension(
            x509.KeyUsage(True, False, False, False, False, True, False, False, False), critical=True
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .sign(key, hashes.SHA256())
    )
    cert_file, key_file = tmp_path / "cert.pem", tmp_path / "key.pem"
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_file.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    return cert_file, key_file


# --- helpers --------------------------------------------------------------------------------------


def leak(
    engine: Engine, issued: Issued, clock: Clock, url: str = "https://github.com/o/r/blob/main/.env"
) -> None:
    report_leak(engine, issued.api_key, clock, url=url, source="commit", policy="revoke", sender=SENDER)


def worker(engine: Engine, transport: Any, clock: Clock, **kwargs: Any) -> MailWorker:
    composer = Composer(MailContext(sender=SENDER, docs_url="https://docs.example/keys"))
    return MailWorker(engine, transport, Metrics(), composer, clock=clock, **kwargs)


def outbox_row(engine: Engine) -> dict[str, Any]:
    (row,) = rows(engine, mail_outbox)
    return row


def notice(**overrides: Any) -> KeyLeak:
    values: dict[str, Any] = {
        "owner_email": "owner@example.com",
        "key_id": 7,
        "label": "prod <deploy>",
        "key_suffix": "ZdL9",
        "url": "https://github.com/o/r/blob/main/.env?a=1&b=<x>",
        "source": "commit",
        "action": "revoked",
        "seen_at": dt.datetime(2026, 11, 26, 12, 0, tzinfo=dt.UTC),
        "leak_event_id": 3,
    }
    return KeyLeak(**(values | overrides))


# --- rendering ------------------------------------------------------------------------------------


def test_rendered_mail_names_key_place_action_and_rotation_steps() -> None:
    message = render(notice(), sender=SENDER, docs_url="https://docs.example/keys")
    assert message["To"] == "owner@example.com"
    assert "ZdL9" in message["Subject"] and "prod <deploy>" in message["Subject"]
    parsed = message_from_string(message.as_string(), policy=policy.default)
    text = parsed.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    html = parsed.get_body(("html",)).get_content()  # type: ignore[union-attr]
    for part in (text, html):
        assert "ZdL9" in part
        assert "commit" in part
        assert "revoked" in part
        assert "Create a new key" in part
        assert "Deploy the new key" in part
        assert "Delete the old key" in part
        assert "https://docs.example/keys" in part
    assert "https://github.com/o/r/blob/main/.env?a=1&b=<x>" in text
    assert "prod <deploy>" in text
    assert "prod &lt;deploy&gt;" in html and "<deploy>" not in html
    assert "b=&lt;x&gt;" in html


def test_flag_mail_says_the_key_still_works() -> None:
    message = render(notice(action="flagged"), sender=SENDER, docs_url="https://d")
    assert "still works" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]


def test_label_with_newlines_cannot_inject_headers() -> None:
    message = render(notice(label="evil\r\nBcc: everyone@example.com"), sender=SENDER, docs_url="https://d")
    assert message["Bcc"] is None
    assert (
        message["Subject"]
        == 'Your Soundpiece API key "evil Bcc: everyone@example.com" (ending in ZdL9) was leaked'
    )
    assert "Bcc" not in message_from_string(message.as_string(), policy=policy.default)


def test_non_http_urls_are_not_links() -> None:
    message = render(notice(url="javascript:alert(1)"), sender=SENDER, docs_url="https://d")
    assert 'href="javascript' not in message.get_body(("html",)).get_content()  # type: ignore[union-attr]


def test_backoff_doubles_up_to_an_hour() -> None:
    assert [backoff_seconds(n) for n in range(0, 9)] == [0, 30, 60, 120, 240, 480, 960, 1920, 3600]
    assert backoff_seconds(1000) == 3600


# --- delivery -------------------------------------------------------------------------------------


def test_worker_sends_over_smtp_and_marks_sent(
    engine: Engine, issue: Callable[..., Issued], clock: Clock, smtp: SmtpSink
) -> None:
    issued = issue(label="ci deploy")
    leak(engine, issued, clock)
    transport = SmtpTransport.from_url(smtp.url, "security@soundpiece.test")
    assert asyncio.run(worker(engine, transport, clock).run_once()) == 1
    (message,) = smtp.messages()
    assert smtp.envelopes == [("security@soundpiece.test", ["owner@example.com"])]
    assert issued.api_key[-4:] in message["Subject"]
    raw = message.as_string()
    assert issued.api_key not in raw and issued.signing_secret not in raw
    body = message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert "ci deploy" in body and "https://github.com/o/r/blob/main/.env" in body
    row = outbox_row(engine)
    assert (row["status"], row["sent_at"]) == ("sent", clock.now())
    assert message["Message-ID"] == row["message_id"] == f"<leak-{issued.key_id}-1@soundpiece.test>"
    assert (row["kind"], row["message"]) == ("leak_notice", None)  # data queued, rendered when sent
    assert '"ci deploy"' in row["payload"] and issued.api_key not in row["payload"]
    assert asyncio.run(worker(engine, transport, clock).run_once()) == 0
    assert len(smtp.messages()) == 1


def test_starttls_and_auth(
    engine: Engine, issue: Callable[..., Issued], clock: Clock, tmp_path: Path
) -> None:
    import ssl

    cert_file, key_file = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert_file, key_file)
    with SmtpSink(tls=context, login=("mailer", "s3cret:pass")) as smtp:
        leak(engine, issue(), clock)
        url = f"smtp://mailer:s3cret%3Apass@127.0.0.1:{smtp.port}"
        untrusted = SmtpTransport.from_url(url, "s@x.test")
        assert asyncio.run(worker(engine, untrusted, clock).run_once()) == 0  # self-signed: refused
        assert outbox_row(engine)["attempts"] == 1
        good = SmtpTransport.from_url(url, "s@x.test", str(cert_file))
        clock.advance(30)
        assert asyncio.run(worker(engine, good, clock).run_once()) == 1
    assert smtp.logins == ["mailer"]
    assert len(smtp.messages()) == 1
    assert outbox_row(engine)["status"] == "sent"


def test_failed_delivery_is_retried_with_backoff(
    engine: Engine, issue: Callable[..., Issued], clock: Clock, smtp: SmtpSink
) -> None:
    leak(engine, issue(), clock)
    down = SmtpTransport.from_url(f"smtp://127.0.0.1:{free_port()}", "s@x.test")
    failing = worker(engine, down, clock)
    assert asyncio.run(failing.run_once()) == 0
    row = outbox_row(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert row["next_attempt_at"] == clock.now() + dt.timedelta(seconds=30)
    assert row["last_error"]
    clock.advance(29)
    asyncio.run(failing.run_once())
    assert outbox_row(engine)["attempts"] == 1  # not due yet
    clock.advance(1)
    asyncio.run(failing.run_once())
    row = outbox_row(engine)
    assert row["attempts"] == 2
    assert row["next_attempt_at"] == clock.now() + dt.timedelta(seconds=60)
    up = worker(engine, SmtpTransport.from_url(smtp.url, "s@x.test"), clock)
    clock.advance(59)
    assert asyncio.run(up.run_once()) == 0
    clock.advance(1)
    assert asyncio.run(up.run_once()) == 1
    assert outbox_row(engine)["status"] == "sent"
    assert len(smtp.messages()) == 1


def test_a_refused_recipient_is_logged_without_the_address(
    engine: Engine,
    issue: Callable[..., Issued],
    clock: Clock,
    smtp: SmtpSink,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Logs name addresses by hash only; an SMTP refusal quotes the address, twice."""
    smtp.refuse_recipients = True
    leak(engine, issue(email="Owner@Example.com"), clock)
    caplog.set_level(logging.INFO)
    transport = SmtpTransport.from_url(smtp.url, "s@x.test")
    assert asyncio.run(worker(engine, transport, clock).run_once()) == 0
    ours = [JsonFormatter().format(r) for r in caplog.records if r.name.startswith("partner_endpoint")]
    (failed,) = [line for line in ours if "mail delivery failed" in line]
    assert "550" in failed and "SMTPRecipientsRefused" in failed  # what went wrong is still said
    assert not [line for line in ours if "owner@example.com" in line.lower()]
    assert "owner@example.com" not in outbox_row(engine)["last_error"].lower()


def test_gives_up_after_max_attempts_but_keeps_the_row(
    engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    leak(engine, issue(), clock)
    failing = worker(
        engine, SmtpTransport.from_url(f"smtp://127.0.0.1:{free_port()}", "s@x"), clock, max_attempts=2
    )
    for _ in range(3):
        asyncio.run(failing.run_once())
        clock.advance(3600)
    row = outbox_row(engine)
    assert (row["status"], row["attempts"]) == ("failed", 2)


def test_without_smtp_mail_is_written_as_eml(
    engine: Engine, issue: Callable[..., Issued], clock: Clock, settings: Settings
) -> None:
    issued = issue(label="eml one")
    leak(engine, issued, clock)
    transport = transport_for(settings)
    assert transport == EmlDirectory(settings.outbox)
    assert asyncio.run(worker(engine, transport, clock).run_once()) == 1
    (eml,) = settings.mail_dir.glob("*.eml")
    message = message_from_bytes(eml.read_bytes(), policy=policy.default)
    assert "eml one" in message["Subject"]
    assert issued.api_key not in eml.read_text()
    assert outbox_row(engine)["status"] == "sent"


def test_transport_choice_from_url() -> None:
    tls = SmtpTransport.from_url("smtps://u%40x:p%2Fw@mail.example", "s@x")
    assert (tls.hostname, tls.port, tls.implicit_tls, tls.username, tls.password) == (
        "mail.example",
        465,
        True,
        "u@x",
        "p/w",
    )
    plain = SmtpTransport.from_url("smtp://mail.example:2525", "s@x")
    assert (plain.port, plain.implicit_tls, plain.username) == (2525, False, None)


def test_two_workers_never_send_one_mail_twice(
    engine: Engine, issue: Callable[..., Issued], clock: Clock
) -> None:
    for i in range(6):
        leak(engine, issue(label=f"k{i}", email=f"o{i}@example.com"), clock)
    sent: list[str] = []

    class Recording:
        async def send(self, mail: Delivery) -> None:
            await asyncio.sleep(0.01)
            sent.append(mail.message_id)

    async def both() -> None:
        await asyncio.gather(
            worker(engine, Recording(), clock).run_once(), worker(engine, Recording(), clock).run_once()
        )

    asyncio.run(both())
    assert sorted(sent) == sorted(r["message_id"] for r in rows(engine, mail_outbox))
    assert len(set(sent)) == 6


def test_serve_runs_the_worker_inside(
    make_client: Callable[..., TestClient], signer: Signer, issue: Callable[..., Issued], settings: Settings
) -> None:
    client = make_client(mail_worker=True, mail_poll_interval=0.05)
    issued = issue(label="inside")
    assert post_alert(client, signer, alert_body(issued.api_key)).status_code == 200
    wait_for(lambda: list(settings.mail_dir.glob("*.eml")), HANG_GUARD, what="the mail of the worker inside")
    (eml,) = settings.mail_dir.glob("*.eml")
    assert "inside" in eml.read_text()
    metrics = scrape(client)
    assert "soundpiece_mail_sent_total 1.0" in metrics


# --- kinds of mail, secret data, rows from before revision 0002 -----------------------------------


def _note(data: Any, context: MailContext) -> EmailMessage:
    message = EmailMessage()
    message["From"] = context.sender
    message["To"] = data["to"]
    message["Subject"] = "a note"
    message.set_content(f"the code is {data['code']}")
    return message


NOTE = Kind("note", _note, secret=True)
KINDS_WITH_SECRET = {NOTE.name: NOTE}


def _queue_note(engine: Engine, box: SecretBox, clock: Clock, code: str) -> None:
    mail = letter(NOTE, "owner@example.com", f"note-{code}", {"to": "o@x", "code": code}, box=box)
    with write_transaction(engine) as conn:
        outbox.enqueue(conn, [mail, mail], sender=SENDER, now=clock.now())


def test_secret_mail_is_stored_encrypted_sent_once_then_erased(
    engine: Engine, box: SecretBox, clock: Clock, smtp: SmtpSink
) -> None:
    _queue_note(engine, box, clock, "K7x9-secret")
    row = outbox_row(engine)  # queued twice, stored once
    assert row["payload"] and "K7x9-secret" not in row["payload"]
    transport = SmtpTransport.from_url(smtp.url, "s@x.test")

    def worker_keyed(key: SecretBox | None) -> MailWorker:
        composer = Composer(MailContext(SENDER, "d"), key, KINDS_WITH_SECRET)
        return MailWorker(engine, transport, Metrics(), composer, clock=clock)

    assert asyncio.run(worker_keyed(None).run_once()) == 0  # cannot decrypt: a failed attempt, retried later
    assert outbox_row(engine)["attempts"] == 1 and "encryption key" in outbox_row(engine)["last_error"]
    clock.advance(30)
    assert asyncio.run(worker_keyed(box).run_once()) == 1
    (message,) = smtp.messages()
    assert "the code is K7x9-secret" in message.get_body(("plain",)).get_content()  # type: ignore[union-attr]
    assert message["Message-ID"] == "<note-K7x9-secret@soundpiece.test>"
    row = outbox_row(engine)
    assert (row["status"], row["payload"]) == ("sent", None)


def test_secret_mail_cannot_be_queued_without_the_key(engine: Engine) -> None:
    with pytest.raises(ValueError, match="encryption key"):
        letter(NOTE, "o@x", "n", {"to": "o@x", "code": "c"})
    assert rows(engine, mail_outbox) == []


def test_unknown_kind_is_a_failed_attempt_not_a_crash(
    engine: Engine, box: SecretBox, clock: Clock, smtp: SmtpSink
) -> None:
    _queue_note(engine, box, clock, "c1")
    transport = SmtpTransport.from_url(smtp.url, "s@x.test")
    assert asyncio.run(worker(engine, transport, clock).run_once()) == 0  # the default kinds lack "note"
    row = outbox_row(engine)
    assert (row["status"], row["attempts"]) == ("pending", 1)
    assert "unknown kind of mail 'note'" in row["last_error"]
    assert smtp.messages() == []


def test_mail_queued_before_revision_0002_is_sent_as_it_was_rendered(
    database_url: str, clock: Clock, smtp: SmtpSink
) -> None:
    """An upgrade loses nothing: a pending row holding a finished message (schema 0001) still goes out."""
    legacy = EmailMessage()
    legacy["From"], legacy["To"], legacy["Subject"] = SENDER, "o@x.test", "rendered before the upgrade"
    legacy["Message-ID"] = "<leak-1-1-revoked@soundpiece.test>"
    legacy.set_content("old body")
    engine = make_engine(database_url)
    try:
        migrate(engine, "0001")
        now = clock.now()
        with write_transaction(engine) as conn:
            for statement in (
                "INSERT INTO accounts (id, owner_email, ip_allowlist, created_at)"
                " VALUES (1, 'o@x.test', '[]', :t)",
                "INSERT INTO api_keys (id, account_id, label, key_hash, key_suffix, status, created_at)"
                " VALUES (1, 1, 'old', 'h', 'abcd', 'revoked', :t)",
                "INSERT INTO leak_events (id, key_id, token_hash, token_type, url, source, location_hash,"
                " first_seen, last_seen, action) VALUES (1, 1, 'h', 't', 'u', 's', 'l', :t, :t, 'revoked')",
                "INSERT INTO mail_outbox (key_id, leak_event_id, message_id, recipient, message, status,"
                " attempts, next_attempt_at, created_at)"
                " VALUES (1, 1, :mid, 'o@x.test', :msg, 'pending', 0, :t, :t)",
            ):
                conn.execute(
                    text(statement),
                    {"t": now, "mid": legacy["Message-ID"], "msg": legacy.as_string()},
                )
        migrate(engine)
        (row,) = rows(engine, mail_outbox)
        assert (row["kind"], row["dedupe_key"], row["payload"]) == ("leak_notice", "leak-1-1", None)
        transport = SmtpTransport.from_url(smtp.url, "s@x.test")
        assert asyncio.run(worker(engine, transport, clock).run_once()) == 1
        (message,) = smtp.messages()
        assert message["Subject"] == "rendered before the upgrade"
        assert message["Message-ID"] == "<leak-1-1-revoked@soundpiece.test>"
        assert outbox_row(engine)["status"] == "sent"
    finally:
        engine.dispose()
