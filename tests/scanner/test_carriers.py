"""UTF-16 and UTF-32 text, hex, mail and PDF, through the command line.

Every carrier is built here with the standard library (codecs, email, quopri, zlib) and the
expected line and column are computed from the decoded text it was built from, never with
the scanner's own decoders.
"""

from __future__ import annotations

import base64
import email.message
import os
import quopri
import tempfile
import time
import zlib
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from scanner.archive.limits import Limits
from scanner.engine import Engine
from scanner.run import scan
from scanner.sources.files import FileSource
from tests.support.archives import zip_bytes
from tests.support.dumps import hexdump_c, xxd
from tests.support.git import Repo, run_scan

MIB = 1 << 20


def key() -> str:
    return rules.API_KEY.mint()


def bad(token: str) -> str:
    return token[:-1] + ("A" if token[-1] != "A" else "B")


def place(text: str, token: str) -> tuple[int, int]:
    """1-based line and column (in characters) of ``token`` in ``text``."""
    before = text[: text.index(token)]
    return before.count("\n") + 1, len(before) - (before.rfind("\n") + 1) + 1


def findings(result) -> list[tuple[str, str, str | None, int, int]]:
    return sorted(
        (f["path"], f["secret_sha256"], f.get("encoding"), f["line"], f["column"]) for f in result.findings
    )


# --- UTF-16 and UTF-32 ---------------------------------------------------------------------------------

ENCODINGS = {  # codec -> the encoding named in findings
    "utf-16": "utf-16le",  # Python's utf-16 writes a BOM and little-endian, as PowerShell's Out-File does
    "utf-16-le": "utf-16le",
    "utf-16-be": "utf-16be",
    "utf-32": "utf-32le",
    "utf-32-le": "utf-32le",
    "utf-32-be": "utf-32be",
}


@pytest.mark.parametrize("codec", sorted(ENCODINGS))
def test_utf16_and_utf32_text_at_the_decoded_line_and_column(tmp_path: Path, codec: str) -> None:
    token = key()
    text = "Windows Registry Editor Version 5.00\r\n\r\n[HKEY_CURRENT_USER\\Software\\Ünïcode]\r\n"
    text += f'"Key"="{token}"\r\n'
    (tmp_path / "export.reg").write_bytes(text.encode(codec))
    (tmp_path / "app.zip").write_bytes(zip_bytes({"res/strings.txt": text.encode(codec)}))
    result = run_scan(".", cwd=tmp_path)
    line, column = place(text, token)
    expected = [
        ("./app.zip!res/strings.txt", rules.identity(token), ENCODINGS[codec], line, column),
        ("./export.reg", rules.identity(token), ENCODINGS[codec], line, column),
    ]
    assert result.code == 1 and findings(result) == expected, result.stderr
    assert result.stderr == ""


def test_powershell_out_file_past_the_first_mebibyte_and_an_inline_marker_in_utf16(tmp_path: Path) -> None:
    """A large UTF-16 file: the token far past the first chunk is still placed in the decoded text; a
    marker written in UTF-16 on a token's line is honoured."""
    token, allowed = key(), key()
    filler = "".join(f"line {i}: é€ {'x' * (i % 70)}\r\n" for i in range(40_000))
    text = filler + f"$env:SOUNDPIECE_KEY = '{token}'\r\n" + f"$k = '{allowed}'  # soundpiece-scan: allow\r\n"
    assert len(text.encode("utf-16")) > 2 * MIB
    (tmp_path / "profile.ps1").write_bytes(text.encode("utf-16"))
    result = run_scan(".", cwd=tmp_path)
    assert findings(result) == [("./profile.ps1", rules.identity(token), "utf-16le", *place(text, token))]


@pytest.mark.parametrize("pad", range(6))
def test_powershell_encoded_command_base64_over_utf16(tmp_path: Path, pad: int) -> None:
    """``powershell -EncodedCommand``: base64 of the script in UTF-16LE; wrapped at 76 too."""
    token = (rules.WEBHOOK_SECRET if pad % 2 else rules.API_KEY).mint()
    script = "$x=1;" * pad + f"Invoke-RestMethod -Headers @{{Authorization='Bearer {token}'}}"
    encoded = base64.b64encode(script.encode("utf-16-le")).decode()
    line = f"C:\\> powershell.exe -NoProfile -EncodedCommand {encoded}\n"
    (tmp_path / "history.txt").write_text("first\n" + line)
    wrapped = base64.encodebytes(script.encode("utf-16-le")).decode()
    (tmp_path / "task.xml.b64").write_text(wrapped)
    result = run_scan(".", cwd=tmp_path)
    at = 2 * script.index(token)  # the token's first byte in the UTF-16 bytes, then its base64 character
    column = line.index(encoded) + at // 3 * 4 + at % 3 + 1
    assert findings(result) == sorted(
        [
            ("./history.txt", rules.identity(token), "base64/utf-16le", 2, column),
            (
                "./task.xml.b64",
                rules.identity(token),
                "base64/utf-16le",
                (at // 3 * 4 + at % 3) // 76 + 1,
                (at // 3 * 4 + at % 3) % 76 + 1,
            ),
        ]
    )


def test_utf16_full_of_tokens_in_linear_time(tmp_path: Path) -> None:
    """12,000 tokens in one UTF-16 file: each placed counting on from the one before (the first
    version compared every reading with every other: 25 s here)."""
    tokens = [key() for _ in range(12_000)]
    text = "".join(f"k{i}={token}\n" for i, token in enumerate(tokens))
    (tmp_path / "many.txt").write_bytes(text.encode("utf-16"))
    started = time.monotonic()
    result = run_scan(".", cwd=tmp_path, timeout=60)
    assert time.monotonic() - started < 10
    assert len(result.findings) == 12_000
    last = max(result.findings, key=lambda f: f["line"])
    assert (last["line"], last["column"], last["secret_sha256"]) == (12_000, 8, rules.identity(tokens[-1]))


def test_utf16_with_a_lone_surrogate_and_decoys(tmp_path: Path) -> None:
    token = key()
    text = f"a\ud800b\nkey={token}\nnot={bad(key())}\n"
    (tmp_path / "odd.txt").write_bytes(text.encode("utf-16-le", "surrogatepass"))
    result = run_scan(".", cwd=tmp_path)
    assert findings(result) == [("./odd.txt", rules.identity(token), "utf-16le", 2, 5)]


# --- hex -------------------------------------------------------------------------------------------------


HEX_FORMS = {
    "run": lambda b: b.hex(),
    "RUN": lambda b: b.hex().upper(),
    "spaced": lambda b: b.hex(" "),
    "colons": lambda b: b.hex(":").upper(),
    "c-array": lambda b: ", ".join(f"0x{x:02x}" for b in [b] for x in b),
    "go-bytes": lambda b: "[]byte{" + ", ".join(f"0x{x:02X}" for x in b) + "}",
    "escaped": lambda b: "".join(f"\\x{x:02x}" for x in b),
}


@pytest.mark.parametrize("form", sorted(HEX_FORMS))
def test_hex_in_each_form(tmp_path: Path, form: str) -> None:
    token = key()
    written = HEX_FORMS[form](token.encode())
    text = f"2026-12-07 DEBUG auth header bytes: {written}\n"
    (tmp_path / "debug.log").write_text(
        "first line\n" + text + f"decoy {HEX_FORMS[form](bad(key()).encode())}\n"
    )
    result = run_scan(".", cwd=tmp_path)
    column = len(text.split(written)[0]) + (written.index("0x") if "0x" in written else 0) + 1
    assert findings(result) == [("./debug.log", rules.identity(token), "hex", 2, column)]


@pytest.mark.parametrize("dump", [xxd, hexdump_c])
@pytest.mark.parametrize("lead", [3, 12, 14])  # early in a dump line, across two, the prefix itself cut
def test_hex_dumps(tmp_path: Path, dump, lead: int) -> None:
    """A file that is a dump is read back whole (``!dump.bin``, placed in the bytes it shows); a dump
    inside a log is read from its prefix's hex image, unless a line break cuts the prefix itself."""
    token = key()
    data = b"\x00" * (16 + lead) + token.encode() + b"\nmore bytes after it\x01\x02"
    (tmp_path / "packet.txt").write_text(dump(data))
    (tmp_path / "debug.log").write_text("12:00:01 received packet:\n" + dump(data) + "12:00:02 done\n")
    result = run_scan(".", cwd=tmp_path)
    expected = [("./packet.txt!dump.bin", rules.identity(token), None, 1, 17 + lead)]
    if lead < 14:
        expected.insert(0, ("./debug.log", rules.identity(token), "hex", 3, (11 if dump is xxd else 10) + 1))
    assert [f[:3] + f[3:4] for f in findings(result)] == [f[:4] for f in expected]
    assert findings(result)[-1] == expected[-1]


def test_odd_length_and_broken_hex_are_not_findings(tmp_path: Path) -> None:
    token = key()
    (tmp_path / "odd.txt").write_text(token.encode().hex()[:-1] + "\n" + token.encode().hex()[:40] + "zz\n")
    result = run_scan(".", cwd=tmp_path)
    assert result.code == 0 and result.findings == [] and result.stderr == ""


# --- mail ------------------------------------------------------------------------------------------------


def message(body: bytes, headers: str) -> bytes:
    return f"From: ops@example.com\r\nTo: dev@example.com\r\nSubject: keys\r\n{headers}\r\n".encode() + body


def test_quoted_printable_with_a_soft_line_break_inside_the_token(tmp_path: Path) -> None:
    token = key()
    text = "x" * 50 + f"Here is the key: {token} keep it safe.\n"
    encoded = quopri.encodestring(text.encode())
    assert token.encode() not in encoded and b"=\n" in encoded  # the soft break cuts the token
    (tmp_path / "keys.eml").write_bytes(
        message(encoded, "MIME-Version: 1.0\r\nContent-Transfer-Encoding: quoted-printable\r\n")
    )
    result = run_scan(".", cwd=tmp_path)
    assert findings(result) == [("./keys.eml!part1.txt", rules.identity(token), None, *place(text, token))]


def test_a_truncated_quoted_printable_body_and_a_base64_body(tmp_path: Path) -> None:
    token, other = key(), key()
    cut = quopri.encodestring(f"{token}\nmore\n".encode())[:-3] + b"="
    (tmp_path / "cut.eml").write_bytes(message(cut, "Content-Transfer-Encoding: quoted-printable\r\n"))
    b64 = base64.encodebytes(f"line one\nline two {other}\n".encode())
    (tmp_path / "b64.eml").write_bytes(
        message(b64, "MIME-Version: 1.0\r\nContent-Transfer-Encoding: base64\r\n")
    )
    result = run_scan(".", cwd=tmp_path)
    assert {(p, s) for p, s, *_ in findings(result)} >= {
        ("./cut.eml!part1.txt", rules.identity(token)),
        ("./b64.eml!part1.txt", rules.identity(other)),
    }
    assert result.stderr == ""


def deploy_mail(token: str, utf16: str, inner_subject: str = "deploy") -> email.message.EmailMessage:
    mail = email.message.EmailMessage()
    mail["From"], mail["To"], mail["Subject"] = "ops@example.com", "dev@example.com", inner_subject
    mail.set_content("see attached")
    mail.add_attachment(
        zip_bytes({"deploy/.env": f"KEY={token}\n".encode()}), "application", "zip", filename="deploy.zip"
    )
    mail.add_attachment(f"token={utf16}\n".encode("utf-16"), "text", "plain", filename="notes.txt")
    return mail


def test_attachments_are_opened_as_what_they_are_and_forwarded_mail_too(tmp_path: Path) -> None:
    zipped, utf16 = key(), key()
    mail = deploy_mail(zipped, utf16)
    forwarded = email.message.EmailMessage()
    forwarded["From"], forwarded["Subject"] = "lead@example.com", "Fwd: deploy"
    forwarded.set_content("FYI")
    forwarded.add_attachment(mail, filename="deploy.eml")
    (tmp_path / "mail").mkdir()
    (tmp_path / "mail" / "forwarded.eml").write_bytes(forwarded.as_bytes())
    (tmp_path / "mail" / "direct.eml").write_bytes(mail.as_bytes())
    result = run_scan(".", cwd=tmp_path)
    assert findings(result) == [
        ("./mail/direct.eml!attachment/deploy.zip!deploy/.env", rules.identity(zipped), None, 1, 5),
        ("./mail/direct.eml!attachment/notes.txt", rules.identity(utf16), "utf-16le", 1, 7),
        (
            "./mail/forwarded.eml!attachment/deploy.eml!attachment/deploy.zip!deploy/.env",
            rules.identity(zipped),
            None,
            1,
            5,
        ),
        (
            "./mail/forwarded.eml!attachment/deploy.eml!attachment/notes.txt",
            rules.identity(utf16),
            "utf-16le",
            1,
            7,
        ),
    ]


def test_a_mailbox_message_by_message_also_in_an_archive(tmp_path: Path) -> None:
    first, zipped, utf16 = key(), key(), key()
    plain = message(base64.encodebytes(f"key {first}\n".encode()), "Content-Transfer-Encoding: base64\r\n")
    # A separator whose time comes within the first bytes (a header's colon is looked for there).
    box = b"From a@b Mon Dec  7 10:00:00 2026\n" + plain.replace(b"\r\n", b"\n") + b"\n"
    box += b"From lead@example.com Mon Dec  7 11:00:00 2026\n" + deploy_mail(zipped, utf16).as_bytes() + b"\n"
    (tmp_path / "inbox.mbox").write_bytes(box)
    (tmp_path / "backup.zip").write_bytes(zip_bytes({"Mail/inbox": box}))
    result = run_scan(".", cwd=tmp_path)
    paths = {(p, s) for p, s, *_ in findings(result)}
    for outer in ("./inbox.mbox", "./backup.zip!Mail/inbox"):
        assert (f"{outer}!message/1!part1.txt", rules.identity(first)) in paths
    assert ("./inbox.mbox!message/2!attachment/deploy.zip!deploy/.env", rules.identity(zipped)) in paths
    assert ("./inbox.mbox!message/2!attachment/notes.txt", rules.identity(utf16)) in paths


def test_a_mail_with_100000_parts_is_cut_at_the_bound(tmp_path: Path) -> None:
    token = key()
    parts = "".join(f"--b\r\nContent-Type: text/plain\r\n\r\npart {i}\r\n" for i in range(100_000))
    late = "--b\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: base64\r\n\r\n"
    late += base64.b64encode(token.encode()).decode() + "\r\n"
    data = message(
        (parts + late + "--b--\r\n").encode(),
        "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=b\r\n",
    )
    (tmp_path / "many.eml").write_bytes(data)
    result = run_scan(".", cwd=tmp_path, timeout=60)
    assert result.stderr.count("mail-parts") == 1, result.stderr
    assert "many.eml" in result.stderr
    assert {p for p, *_ in findings(result)} == {"./many.eml"}  # the raw bytes: base64 found as written


def test_mime_nested_ten_thousand_deep_is_a_warning(tmp_path: Path) -> None:
    body = b"hello"
    for level in range(10_000):
        body = b"Content-Type: multipart/mixed; boundary=b%d\r\n\r\n--b%d\r\n%s\r\n--b%d--\r\n" % (
            level,
            level,
            body,
            level,
        )
    (tmp_path / "deep.eml").write_bytes(b"From: a@example.com\r\nTo: b@example.com\r\n" + body)
    result = run_scan(".", "--mail-parts", "100000", cwd=tmp_path, timeout=60)
    assert result.code == 0 and "deep.eml" in result.stderr, result.stderr


# --- PDF -------------------------------------------------------------------------------------------------


def pdf(*streams: tuple[bytes, bytes]) -> bytes:
    """A PDF whose objects are these (dictionary entries, stream data) pairs, numbered from 4."""
    out = b"%PDF-1.7\n1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n"
    for number, (entries, data) in enumerate(streams, 4):
        out += b"%d 0 obj\n<< /Length %d %s >>\nstream\n%s\nendstream\nendobj\n" % (
            number,
            len(data),
            entries,
            data,
        )
    return out + b"trailer\n<< /Root 1 0 R >>\n%%EOF\n"


def test_pdf_text_in_flate_and_plain_content_streams_and_object_streams(tmp_path: Path) -> None:
    kerned, plain, in_objects, attached = key(), key(), key(), key()
    pieces = f"[({kerned[:9]}) -12 ({kerned[9:30]}) 30 ({kerned[30:]})] TJ"  # kerning splits the token
    content = f"BT /F1 12 Tf 72 712 Td (API key:) Tj 0 -14 Td {pieces} ET".encode()
    objects = f"7 0 << /Title ({in_objects}) >>".encode()
    (tmp_path / "report.pdf").write_bytes(
        pdf(
            (b"/Filter /FlateDecode", zlib.compress(content)),
            (b"", f"BT ({plain}) Tj ET".encode()),
            (b"/Type /ObjStm /N 1 /First 4 /Filter [/FlateDecode]", zlib.compress(objects)),
            (
                b"/Type /EmbeddedFile /Filter /FlateDecode",
                zlib.compress(zip_bytes({"a.env": f"K={attached}".encode()})),
            ),
            (b"/Subtype /Image /Filter /DCTDecode", b"\xff\xd8\xff garbage"),
        )
    )
    result = run_scan(".", cwd=tmp_path)
    assert findings(result) == sorted(
        [
            ("./report.pdf!text/4", rules.identity(kerned), None, 1, 9),
            ("./report.pdf!text/5", rules.identity(plain), None, 1, 1),
            ("./report.pdf!stream/6", rules.identity(in_objects), None, 1, 16),
            ("./report.pdf!stream/7!a.env", rules.identity(attached), None, 1, 3),
        ]
    )
    assert result.stderr == ""


def test_a_pdf_stream_inflating_1000_times_and_malformed_pdfs_are_warnings(tmp_path: Path) -> None:
    token = key()
    bomb = zlib.compress(b"\0" * (64 * MIB), 9)
    assert len(bomb) * 1000 < 64 * MIB
    (tmp_path / "bomb.pdf").write_bytes(
        pdf(
            (b"/Filter /FlateDecode", bomb),
            (b"/Filter /FlateDecode", zlib.compress(f"BT ({token}) Tj ET".encode())),
        )
    )
    whole = pdf((b"/Filter /FlateDecode", zlib.compress(f"BT ({key()}) Tj ET".encode() * 50)))
    (tmp_path / "cut.pdf").write_bytes(whole[: len(whole) // 2])
    (tmp_path / "garbage.pdf").write_bytes(
        b"%PDF-1.4\n1 0 obj << /Filter /FlateDecode >> stream\n" + bytes(range(256)) * 20
    )
    (tmp_path / "locked.pdf").write_bytes(
        pdf((b"", b"BT (x) Tj ET")).replace(b"/Root 1 0 R", b"/Root 1 0 R /Encrypt 9 0 R")
    )
    result = run_scan(".", cwd=tmp_path, timeout=60)
    assert ("./bomb.pdf!text/5", rules.identity(token)) in {(p, s) for p, s, *_ in findings(result)}
    warned = result.stderr.splitlines()
    assert any("bomb.pdf!stream/4" in w and "archive-ratio" in w for w in warned), warned
    assert any("locked.pdf" in w and "encrypted" in w for w in warned), warned
    assert result.code == 1


# --- every carrier off, one at a time ---------------------------------------------------------------------


def every_carrier(tmp_path: Path) -> dict[str, str]:
    tokens = {name: key() for name in ("utf16", "hex", "mail", "pdf")}
    (tmp_path / "w.txt").write_bytes(f"k={tokens['utf16']}".encode("utf-16"))
    (tmp_path / "h.log").write_text(tokens["hex"].encode().hex(" "))
    qp = quopri.encodestring(("y" * 60 + tokens["mail"]).encode())
    (tmp_path / "m.eml").write_bytes(message(qp, "Content-Transfer-Encoding: quoted-printable\r\n"))
    content = f"BT [({tokens['pdf'][:20]}) 5 ({tokens['pdf'][20:]})] TJ ET".encode()
    (tmp_path / "p.pdf").write_bytes(pdf((b"/Filter /FlateDecode", zlib.compress(content))))
    return tokens


@pytest.mark.parametrize("off", ["utf16", "hex", "mail", "pdf"])
def test_each_carrier_can_be_switched_off_on_its_own(tmp_path: Path, off: str) -> None:
    tokens = every_carrier(tmp_path)
    (tmp_path / ".soundpiece-scan.toml").write_text(f"carriers = {{ {off} = false }}\n")
    result = run_scan(".", cwd=tmp_path, config=True)
    found = {s for _, s, *_ in findings(result)}
    assert found == {rules.identity(t) for name, t in tokens.items() if name != off}


def test_plain_decodes_and_opens_nothing_and_an_unknown_carrier_is_an_error(tmp_path: Path) -> None:
    every_carrier(tmp_path)
    assert run_scan(".", "--plain", cwd=tmp_path).findings == []
    (tmp_path / ".soundpiece-scan.toml").write_text("carriers = { uuencode = false }\n")
    result = run_scan(".", cwd=tmp_path, config=True)
    assert result.code == 2 and "unknown carrier carriers.uuencode" in result.stderr


def test_decoys_in_every_new_carrier_are_never_reported(tmp_path: Path) -> None:
    decoy = bad(key())
    (tmp_path / "w.txt").write_bytes(decoy.encode("utf-16"))
    (tmp_path / "h.log").write_text(decoy.encode().hex())
    (tmp_path / "m.eml").write_bytes(
        message(
            quopri.encodestring(("y" * 60 + decoy).encode()),
            "Content-Transfer-Encoding: quoted-printable\r\n",
        )
    )
    (tmp_path / "p.pdf").write_bytes(
        pdf((b"/Filter /FlateDecode", zlib.compress(f"BT ({decoy}) Tj ET".encode())))
    )
    result = run_scan(".", cwd=tmp_path)
    assert result.code == 0 and result.findings == [] and result.stderr == ""


# --- properties ------------------------------------------------------------------------------------------

ENGINE = Engine()


def scan_file(tmp: str, data: bytes) -> list:
    path = os.path.join(tmp, "input.bin").encode()
    with open(path, "wb") as handle:
        handle.write(data)
    return scan([FileSource.listed([path])], ENGINE, warn=lambda _: None, limits=Limits())[
        0
    ]  # noise may look like an archive


@settings(max_examples=150, deadline=None)
@given(
    before=st.text(
        st.characters(blacklist_categories=("Cs",)) | st.sampled_from("\n\r\t é€😀"), max_size=300
    ),
    after=st.text(max_size=50),
    codec=st.sampled_from(sorted(ENCODINGS)),
    webhook=st.booleans(),
)
def test_a_token_anywhere_in_utf16_or_utf32_text_is_placed_in_the_decoded_text(
    before, after, codec, webhook
) -> None:
    token = (rules.WEBHOOK_SECRET if webhook else rules.API_KEY).mint()
    text = before + token + after
    with tempfile.TemporaryDirectory() as tmp:
        found = scan_file(tmp, text.encode(codec, "surrogatepass"))
    mine = [f for f in found if f.match.secret == token.encode()]
    assert [(f.match.line, f.match.column, f.match.encoding) for f in mine] == [
        (*place(text, token), ENCODINGS[codec])
    ]
    assert all(rules.recognise(f.match.secret) for f in found)


@settings(max_examples=150, deadline=None)
@given(
    noise=st.binary(max_size=200),
    separator=st.sampled_from(["", " ", ":", "-", ", 0x", " 0x", "\\x"]),
    upper=st.booleans(),
    wrap=st.sampled_from([None, 16, 32, 60]),
)
def test_a_token_in_hex_any_way_written_is_found_once(noise, separator, upper, wrap) -> None:
    token = rules.API_KEY.mint()
    pairs = [f"{b:02X}" if upper else f"{b:02x}" for b in token.encode()]
    if separator in (", 0x", " 0x", "\\x"):
        pairs = [("\\x" if separator == "\\x" else "0x") + p for p in pairs]
        separator = "" if separator == "\\x" else separator[:-2]
    items = [
        separator.join(pairs[i : i + (wrap or len(pairs))]) for i in range(0, len(pairs), wrap or len(pairs))
    ]
    written = (separator.rstrip() + "\n").join(items) if wrap else items[0]
    with tempfile.TemporaryDirectory() as tmp:
        found = scan_file(tmp, noise + b"\n" + written.encode() + b"\n" + noise)
    assert [f.match.secret for f in found if f.match.encoding == "hex"].count(token.encode()) == 1
    assert all(rules.recognise(f.match.secret) for f in found)


def test_new_carriers_in_history_and_staged(tmp_path: Path) -> None:
    """A staged message is read whole from its blob and opened (lines added mean nothing in a part); a
    staged UTF-16 file's added lines are placed on their line; history opens a committed PDF."""
    repo = Repo.init(tmp_path / "repo", tmp_path)
    repo.commit({"README": "hello\n"})
    committed = key()
    content = zlib.compress(f"BT [({committed[:7]}) 4 ({committed[7:]})] TJ ET".encode())
    commit = repo.commit({"docs/manual.pdf": pdf((b"/Filter /FlateDecode", content))})
    [finding] = run_scan("--git", ".", cwd=repo.path).findings
    assert (finding["path"], finding["commit"], finding["secret_sha256"]) == (
        "docs/manual.pdf!text/4",
        commit,
        rules.identity(committed),
    )
    mailed, wide = key(), key()
    text = "x" * 50 + f"key: {mailed}\n"
    repo.write(
        "mail/keys.eml",
        message(quopri.encodestring(text.encode()), "Content-Transfer-Encoding: quoted-printable\r\n"),
    )
    repo.write("conf/app.ini", f"[app]\r\nkey={wide}\r\n".encode("utf-16"))
    repo.git("add", "mail/keys.eml", "conf/app.ini")
    result = run_scan("--staged", cwd=repo.path)
    assert findings(result) == sorted(
        [
            ("conf/app.ini", rules.identity(wide), "utf-16le", 2, 5),
            ("mail/keys.eml!part1.txt", rules.identity(mailed), None, *place(text, mailed)),
        ]
    )


def test_a_mailbox_message_over_the_in_memory_bound_is_cut_and_the_next_still_read(tmp_path: Path) -> None:
    first, big, last = key(), key(), key()

    def mbox_message(subject: str, body: bytes) -> bytes:
        headers = f"From: a@example.com\nTo: b@example.com\nSubject: {subject}\n"
        headers += "Content-Transfer-Encoding: base64\n\n"
        return b"From a@b Mon Dec  7 10:00:00 2026\n" + headers.encode() + base64.encodebytes(body) + b"\n"

    box = mbox_message("one", f"key {first}\n".encode())
    box += mbox_message("two", b"x" * (3 * MIB) + f"key {big}\n".encode())
    box += mbox_message("three", f"key {last}\n".encode())
    (tmp_path / "inbox").write_bytes(box)
    result = run_scan("inbox", "--archive-in-memory", "1MiB", cwd=tmp_path)
    assert {(p, s) for p, s, *_ in findings(result)} == {
        ("inbox!message/1!part1.txt", rules.identity(first)),
        ("inbox", rules.identity(big)),  # as written, in base64: the part itself was cut
        ("inbox!message/3!part1.txt", rules.identity(last)),
    }
    assert result.stderr.strip().endswith("inbox!message/2: over 1 MiB (archive-in-memory): cut there")
