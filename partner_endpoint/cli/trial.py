"""``test-alert``: a leak report signed exactly as GitHub signs it, sent to a local ``serve``.

The whole loop (verify, record, revoke or flag, mail the owner, the dashboard turns red) without
GitHub and without code of one's own. The signer is the local test signer (``SOUNDPIECE_TEST_SIGNER``),
which only a service on loopback trusts, so alerts go to loopback addresses only.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any
from urllib.parse import urlsplit

import httpx

import rules
from partner_endpoint.alerts.trial_signer import TrialSigner
from partner_endpoint.cli.common import CommandError, output
from partner_endpoint.settings import Settings, is_loopback_host

ALERT_PATH = "/v1/secret-scanning/github"
EXAMPLE_URL = "https://github.com/octo-org/octo-repo/blob/main/config/settings.py"


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    alert = commands.add_parser(
        "test-alert",
        parents=[common],
        help="send a local serve a leak report signed as GitHub signs it (needs SOUNDPIECE_TEST_SIGNER=on)",
        description="Report TOKEN as leaked to a local `soundpiece-partner serve` that runs with "
        "SOUNDPIECE_TEST_SIGNER=on, exactly as GitHub's secret scanning would: the same body and "
        "headers, signed by the local test signer. The service then applies its leak policy and mails "
        "the key's owner. Exit 0 when the service accepted the alert, 1 when it refused it.",
    )
    alert.add_argument("token", help="the credential to report ('-': read it from standard input)")
    alert.add_argument("--url", default=EXAMPLE_URL, help="where it was found (default: an example)")
    alert.add_argument("--source", default="content", help="GitHub's source of the find (default: content)")
    alert.add_argument(
        "--to",
        metavar="URL",
        help="the service's address, loopback only (default: the origin of SOUNDPIECE_DASHBOARD_URL)",
    )
    alert.set_defaults(run=_test_alert)


def _test_alert(args: argparse.Namespace, settings: Settings) -> int:
    token = sys.stdin.readline().strip() if args.token == "-" else args.token.strip()
    fmt = rules.recognise(token)
    base = (args.to or _origin(settings.dashboard_url)).rstrip("/")
    if not is_loopback_host(urlsplit(base).hostname or ""):
        raise CommandError(f"test alerts go to a service on this machine only (loopback), not {base}")
    signer = TrialSigner.load(settings.test_signer_file)
    body = json.dumps(
        [{"token": token, "type": fmt.name if fmt else "unknown", "url": args.url, "source": args.source}]
    ).encode()
    headers = {
        "Content-Type": "application/json",
        "Github-Public-Key-Identifier": signer.key_id,
        "Github-Public-Key-Signature": signer.sign(body),
    }
    target = base + ALERT_PATH
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"could not reach {target}: {exc} (is `soundpiece-partner serve` running?)"
        ) from None
    shown = rules.redact(token) if fmt else "a token that is not a Soundpiece credential"
    if response.status_code != 200:
        detail = _detail(response)
        # 401: the signer's key is unknown there; 503: unknown, and GitHub's document unreachable too.
        hint = (
            " (is serve running with SOUNDPIECE_TEST_SIGNER=on? It trusts the test signer only then)"
            if response.status_code in (401, 503)
            else ""
        )
        output(
            args,
            {"status": response.status_code, "detail": detail},
            f"refused {response.status_code}: {detail}{hint}",
        )
        return 1
    answer = response.json()
    label = answer[0]["label"] if answer else "none"
    meaning = (
        "the token is one of ours: the leak policy applied and its owner is mailed; see "
        "`soundpiece-partner leaks list` and the key's page in the dashboard"
        if label == "true_positive"
        else "the service did not issue this token: nothing changed"
    )
    output(args, {"status": 200, "feedback": answer}, f"sent {shown} to {target}\n{label}: {meaning}")
    return 0


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:200]
    except (ValueError, AttributeError):
        return response.text[:200]
