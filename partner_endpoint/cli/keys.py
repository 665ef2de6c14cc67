"""API keys: create (shown once), list, revoke, delete."""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any

from partner_endpoint.cli.common import address_json, open_database, open_keyed, output, since
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.domain.display import one_line
from partner_endpoint.services.keys import KeyService
from partner_endpoint.services.traffic import TrafficService
from partner_endpoint.settings import Settings
from partner_endpoint.store.db import NotFound


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    actions = commands.add_parser("keys", help="manage API keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = actions.add_parser("create", parents=[common], help="mint a key pair (shown once)")
    create.add_argument("--account", type=int, required=True)
    create.add_argument("--label", required=True)
    create.set_defaults(run=_create)
    listing = actions.add_parser("list", parents=[common], help="list an account's keys")
    listing.add_argument("--account", type=int, required=True)
    listing.set_defaults(run=_list)
    revoke = actions.add_parser("revoke", parents=[common], help="revoke a key and its signing secret")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(run=_revoke)
    delete = actions.add_parser(
        "delete", parents=[common], help="revoke a key and hide it from its owner (its leak records stay)"
    )
    delete.add_argument("key_id", type=int)
    delete.set_defaults(run=_delete)
    usage = actions.add_parser(
        "usage", parents=[common], help="a key's requests by client address and by hour (refused ones apart)"
    )
    usage.add_argument("key_id", type=int)
    usage.add_argument(
        "--since",
        type=since,
        metavar="TIME",
        help="from when: 2026-12-01, 2026-12-01T09:30Z, 7d, 24h (default: 7d)",
    )
    usage.set_defaults(run=_usage)


def _service(settings: Settings) -> KeyService:
    """Without the encryption key: revoking must work even while the key is in doubt."""
    return KeyService(open_database(settings), None, SYSTEM_CLOCK)


def _create(args: argparse.Namespace, settings: Settings) -> int:
    engine, box = open_keyed(settings)
    new = KeyService(engine, box, SYSTEM_CLOCK).create(args.account, args.label)
    assert not isinstance(new, int)  # no form: every call mints
    data = {
        "key_id": new.key.key_id,
        "label": new.key.label,
        "key": new.api_key,
        "signing_secret": new.signing_secret,
    }
    human = (
        f"created key {new.key.key_id} ({new.key.label}). Shown once, store them now:\n"
        f"  API key:        {new.api_key}\n  signing secret: {new.signing_secret}"
    )
    output(args, data, human)
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    records = _service(settings).of_account(args.account)
    data = [
        {
            "key_id": r.key_id,
            "label": r.label,
            "key_suffix": r.key_suffix,
            "status": r.status,
            "created_at": r.created_at,
            "last_used_at": r.last_used_at,
        }
        for r in records
    ]
    human = "\n".join(f"{r.key_id}\t{r.status}\t…{r.key_suffix}\t{one_line(r.label)}" for r in records)
    output(args, data, human or f"account {args.account} has no keys")
    return 0


def _revoke(args: argparse.Namespace, settings: Settings) -> int:
    changed = _service(settings).revoke(args.key_id)
    state = "revoked" if changed else "was already revoked"
    output(args, {"key_id": args.key_id, "revoked": True, "changed": changed}, f"key {args.key_id} {state}")
    return 0


def _delete(args: argparse.Namespace, settings: Settings) -> int:
    _service(settings).delete(args.key_id)
    output(args, {"key_id": args.key_id, "deleted": True}, f"key {args.key_id} deleted: it no longer works")
    return 0


def _usage(args: argparse.Namespace, settings: Settings) -> int:
    engine = open_database(settings)
    if KeyService(engine, None, SYSTEM_CLOCK).record(args.key_id) is None:
        raise NotFound(f"no key {args.key_id}")
    start = args.since or SYSTEM_CLOCK.now() - timedelta(days=7)
    addresses, hours = TrafficService.from_settings(engine, settings, SYSTEM_CLOCK).usage(args.key_id, start)
    data = {
        "key_id": args.key_id,
        "since": start.isoformat(),
        "total": sum(a.requests for a in addresses),
        "refused": sum(a.refused for a in addresses),
        "by_address": [address_json(a) for a in addresses],
        "by_hour": [{"hour": p.at.isoformat(), "requests": p.requests, "refused": p.refused} for p in hours],
    }
    human = "\n".join(
        [
            f"key {args.key_id} since {start:%Y-%m-%d %H:%M}: "
            f"{data['total']} requests, {data['refused']} refused"
        ]
        + [
            f"  {a.address}\t{a.requests} requests\t{a.refused} refused\tlast {a.last_at:%Y-%m-%d %H:%M}"
            for a in addresses
        ]
    )
    output(args, data, human)
    return 0
