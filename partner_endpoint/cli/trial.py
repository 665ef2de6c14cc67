"""``test-alert``: a leak report signed exactly as GitHub (or deps.dev, or GitLab) signs it, sent to a
local ``serve``.

The whole loop (verify, record, revoke or flag, mail the owner, the dashboard turns red) without
the platforms and without code of one's own: ``--origin`` picks the origin whose headers, entry
fields and route it uses (:mod:`partner_endpoint.domain.origins`). The signer is the local test
signer (``SOUNDPIECE_TEST_SIGNER``), which only a service on loopback trusts, so alerts go to
loopback addresses only.
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
from partner_endpoint.domain.origins import BY_NAME, GITHUB, Origin
from partner_endpoint.settings import PREFIX, Settings, is_loopback_host

ALERT_PATH = GITHUB.route
EXAMPLE_URL = "https://github.com/octo-org/octo-repo/blob/main/config/settings.py"
EXAMPLES = {
    "github": (EXAMPLE_URL, "content"),
    "deps.dev": ("https://deps.dev/pypi/octo-package/1.0.0", ""),
    "gitlab": ("https://gitlab.com/octo-org/octo-repo/-/raw/0123456789abcdef/config/settings.py", ""),
}
"""Where each origin's example report says the token was found, and its source."""


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    alert = commands.add_parser(
        "test-alert",
        parents=[common],
        help="send a local serve a leak report signed as GitHub signs it (needs SOUNDPIECE_TEST_SIGNER=on)",
        description="Report TOKEN as leaked to a local `soundpiece-partner serve` that runs with "
        "SOUNDPIECE_TEST_SIGNER=on, exactly as GitHub's secret scanning would (or deps.dev, or GitLab: "
        "--origin): the same body and headers, signed by the local test signer. The service then "
        "applies its leak policy and mails the key's owner. Exit 0 when the service accepted the "
        "alert, 1 when it refused it.",
    )
    alert.add_argument("token", help="the credential to report ('-': read it from standard input)")
    alert.add_argument(
        "--origin",
        choices=list(BY_NAME),
        default=GITHUB.name,
        help="the platform to report as: its headers, fields and route (default: github); "
        "it must be on in the service (SOUNDPIECE_DEPSDEV_ALERTS, SOUNDPIECE_GITLAB_ALERTS)",
    )
    alert.add_argument("--url", help="where it was found (default: an example for the origin)")
    alert.add_argument(
        "--source", help="the platform's source of the find, where it sends one (default: GitHub's content)"
    )
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
    origin = BY_NAME[args.origin]
    body = json.dumps([_entry(origin, token, fmt.name if fmt else "unknown", args)]).encode()
    headers = {
        "Content-Type": "application/json",
        origin.key_id_header: signer.key_id,
        origin.signature_header: signer.sign(body),
    }
    target = base + origin.route
    try:
        response = httpx.post(target, content=body, headers=headers, timeout=30)
    except httpx.HTTPError as exc:
        raise CommandError(
            f"could not reach {target}: {exc} (is `soundpiece-partner serve` running?)"
        ) from None
    shown = rules.redact(token) if fmt else "a token that is not a Soundpiece credential"
    if response.status_code not in (200, 204):
        detail = _detail(response)
        # 401: the signer's key is unknown there (or the origin is off: the API's 401); 503: unknown,
        # and the origin's document unreachable too.
        switch = "" if origin is GITHUB else f" and {PREFIX}{origin.switch.upper()}=on"
        hint = (
            f" (is serve running with SOUNDPIECE_TEST_SIGNER=on{switch}? It trusts the test signer only then)"
            if response.status_code in (401, 503)
            else ""
        )
        output(
            args,
            {"status": response.status_code, "detail": detail},
            f"refused {response.status_code}: {detail}{hint}",
        )
        return 1
    if response.status_code == 204:  # GitLab's protocol: any 2xx acknowledges, and says nothing more
        human = (
            f"sent {shown} to {target}\naccepted (204): {origin.platform} is told no more; "
            "`soundpiece-partner leaks list` shows whether the token was one of ours"
        )
        output(args, {"status": 204}, human)
        return 0
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


def _entry(origin: Origin, token: str, token_type: str, args: argparse.Namespace) -> dict[str, str]:
    """One reported token, in the members the origin sends."""
    url, source = EXAMPLES.get(origin.name, ("https://example.com/where-it-was-found", ""))
    entry = {"token": token, "type": token_type, origin.fields.url: args.url or url}
    if origin.fields.source is not None:
        entry[origin.fields.source] = source if args.source is None else args.source
    return entry


def _origin(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


def _detail(response: httpx.Response) -> str:
    try:
        return str(response.json().get("detail", response.text))[:200]
    except (ValueError, AttributeError):
        return response.text[:200]
