"""Reported leaks: ``leaks list``."""

from __future__ import annotations

import argparse
from typing import Any

from partner_endpoint.cli.common import address_json, open_database, output
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.domain.display import URL_LIMIT, one_line
from partner_endpoint.domain.reported_by import reported_by
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.services.traffic import AfterReport, TrafficService
from partner_endpoint.settings import Settings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    actions = commands.add_parser("leaks", help="reported leaks").add_subparsers(
        required=True, metavar="ACTION"
    )
    actions.add_parser("list", parents=[common], help="list leak events, newest first").set_defaults(
        run=_list
    )


def _list(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_database(settings)
    leaks = LeakService.from_settings(engine, settings, SYSTEM_CLOCK).recent()
    traffic = TrafficService.from_settings(engine, settings, SYSTEM_CLOCK)
    after = {key_id: traffic.after_report(key_id) for key_id in {int(str(e["key_id"])) for e in leaks}}
    for event in leaks:
        report = after[int(str(event["key_id"]))]
        event["after_report"] = None if report is None else _after_json(report)
    # url and source are the alert sender's text: one_line keeps their ESC, CR and LF off the terminal.
    human = "\n".join(
        f"{e['last_seen']:%Y-%m-%d %H:%M}\tkey {e['key_id']}\t{e['action']}\t"
        f"{reported_by(str(e['origin']), str(e['url']))}\t"
        f"{one_line(str(e['source']))}\t{one_line(str(e['url']), URL_LIMIT)}"
        for e in leaks
    )
    output(args, leaks, human or "no leaks")
    return 0


def _after_json(report: AfterReport) -> dict[str, Any]:
    """Use of the key since its first report (the same for each of its sightings)."""
    return {
        "reported_at": report.reported_at.isoformat(),
        "requests": report.requests,
        "refused": report.refused,
        "addresses": [
            address_json(a.use) | {"seen_before_report": a.seen_before_report} for a in report.addresses
        ],
    }
