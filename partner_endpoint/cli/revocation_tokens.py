"""The revocation API's tokens, one per self-managed GitLab instance: create (shown once), list, revoke."""

from __future__ import annotations

import argparse
from typing import Any

from partner_endpoint.cli.common import open_database, output
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.domain.display import one_line
from partner_endpoint.services.revocation_tokens import RevocationTokenService
from partner_endpoint.settings import Settings
from partner_endpoint.store.revocation_tokens import TokenRecord


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    actions = commands.add_parser(
        "revocation-tokens", help="tokens of the self-managed GitLab instances that call the revocation API"
    ).add_subparsers(required=True, metavar="ACTION")
    create = actions.add_parser(
        "create", parents=[common], help="a token for one instance (shown once; give it to that instance)"
    )
    create.add_argument("--name", required=True, help="the instance, for example gitlab.example.com")
    create.set_defaults(run=_create)
    actions.add_parser("list", parents=[common], help="every token, revoked ones too").set_defaults(run=_list)
    revoke = actions.add_parser("revoke", parents=[common], help="stop honouring a token")
    revoke.add_argument("token_id", type=int)
    revoke.set_defaults(run=_revoke)


def _service(settings: Settings) -> RevocationTokenService:
    return RevocationTokenService.from_settings(open_database(settings), settings, SYSTEM_CLOCK)


def _create(args: argparse.Namespace, settings: Settings) -> int:
    new = _service(settings).create(args.name)
    human = (
        f"created revocation token {new.token_id} for {new.name}. Shown once, give it to that instance now "
        f"(its secret_detection_token_revocation_token):\n  {new.token}"
    )
    output(args, {"token_id": new.token_id, "name": new.name, "token": new.token}, human)
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    records = _service(settings).every()
    data = [
        {
            "token_id": r.token_id,
            "name": r.name,
            "token_suffix": r.token_suffix,
            "created_at": r.created_at,
            "last_used_at": r.last_used_at,
            "revoked_at": r.revoked_at,
        }
        for r in records
    ]
    output(args, data, "\n".join(map(_line, records)) or "no revocation tokens")
    return 0


def _line(record: TokenRecord) -> str:
    used = f"{record.last_used_at:%Y-%m-%d %H:%M}" if record.last_used_at else "never"
    state = "revoked" if record.revoked_at else "active"
    return f"{record.token_id}\t{state}\t…{record.token_suffix}\tlast used {used}\t{one_line(record.name)}"


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    changed = _service(settings).revoke(args.token_id)
    state = "revoked" if changed else "was already revoked"
    output(
        args,
        {"token_id": args.token_id, "revoked": True, "changed": changed},
        f"token {args.token_id} {state}",
    )
    return 0
