"""Reported leaks: ``leaks list``."""

from __future__ import annotations

import argparse
from typing import Any

from partner_endpoint.cli.common import open_database, output
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.domain.display import URL_LIMIT, one_line
from partner_endpoint.domain.reported_by import reported_by
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.settings import Settings


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    actions = commands.add_parser("leaks", help="reported leaks").add_subparsers(
        required=True, metavar="ACTION"
    )
    actions.add_parser("list", parents=[common], help="list leak events, newest first").set_defaults(
        run=_list
    )


def _list(args: argparse.Namespace, settings: Settings) -> int:
    leaks = LeakService.from_settings(open_database(settings), settings, SYSTEM_CLOCK).recent()
    # url and source are the alert sender's text: one_line keeps their ESC, CR and LF off the terminal.
    human = "\n".join(
        f"{e['last_seen']:%Y-%m-%d %H:%M}\tkey {e['key_id']}\t{e['action']}\t"
        f"{reported_by(str(e['origin']), str(e['url']))}\t"
        f"{one_line(str(e['source']))}\t{one_line(str(e['url']), URL_LIMIT)}"
        for e in leaks
    )
    output(args, leaks, human or "no leaks")
    return 0
