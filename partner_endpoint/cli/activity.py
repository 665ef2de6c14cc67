"""``activity``: each account's activity log as JSON lines, oldest first, for a SIEM to read."""

from __future__ import annotations

import argparse
import json
from typing import Any

from partner_endpoint.cli.common import open_database, since
from partner_endpoint.services.activity import ActivityService
from partner_endpoint.settings import Settings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    log = commands.add_parser(
        "activity",
        parents=[common],
        help="the activity log as JSON lines: keys created, rotated, revoked, deleted, leaks, sign-ins...",
        description="Print the activity log, one JSON object a line, oldest first: what happened to each "
        "account's keys, sessions and allowlist, when, by whom and from which client address.",
    )
    log.add_argument("--account", type=int, help="one account's entries (default: every account's)")
    log.add_argument(
        "--since", type=since, metavar="TIME", help="from when: 2026-12-01, 2026-12-01T09:30Z, 7d, 24h"
    )
    log.set_defaults(run=_activity)


def _activity(args: argparse.Namespace, settings: Settings) -> int:
    entries = ActivityService(open_database(settings)).since(args.since, args.account)
    for entry in entries:
        print(json.dumps(entry.as_json(), ensure_ascii=False, separators=(",", ":")))
    return 0
