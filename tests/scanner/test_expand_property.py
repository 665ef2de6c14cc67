"""Property: a token at any offset of any content, then base64-encoded (any alignment, wrapped
or not), zipped or tarred, is found exactly once, under the outer path."""

from __future__ import annotations

import base64
import os
import tempfile

from hypothesis import given, settings
from hypothesis import strategies as st

import rules
from scanner.archive.limits import Limits
from scanner.engine import Engine
from scanner.run import scan
from scanner.sources.files import FileSource
from tests.support.archives import tar_bytes, zip_bytes

ENGINE = Engine()


def _zip(data: bytes) -> bytes:
    return zip_bytes({"inner/file.txt": data})


def _tar(data: bytes) -> bytes:
    return tar_bytes({"inner/file.txt": data}, "w:gz")


def _base64(data: bytes, wrap: int | None, url: bool) -> bytes:
    text = (base64.urlsafe_b64encode if url else base64.b64encode)(data)
    if wrap:
        text = b"\n".join(text[i : i + wrap] for i in range(0, len(text), wrap))
    return b"value: " + text + b"\n"


@settings(max_examples=150, deadline=None)
@given(
    before=st.binary(max_size=300),
    after=st.binary(max_size=100),
    webhook=st.booleans(),
    carrier=st.sampled_from(["base64", "zip", "tar"]),
    wrap=st.sampled_from([None, 76, 64, 13]),
    url=st.booleans(),
)
def test_a_token_in_any_carrier_is_found_once(before, after, webhook, carrier, wrap, url) -> None:
    token = (rules.WEBHOOK_SECRET if webhook else rules.API_KEY).mint().encode()
    content = before + token + after
    if carrier == "base64":
        data, inner = _base64(content, wrap, url), ()
    else:
        data, inner = (_zip if carrier == "zip" else _tar)(content), (b"inner/file.txt",)
    with tempfile.TemporaryDirectory() as directory:
        path = os.path.join(directory, "carrier.bin").encode()
        with open(path, "wb") as handle:
            handle.write(data)
        findings, _ = scan([FileSource.listed([path])], ENGINE, warn=print, limits=Limits())
    found = [(f.location.path, f.location.inner, f.match.secret) for f in findings]
    assert found == [(path, inner, token)]
