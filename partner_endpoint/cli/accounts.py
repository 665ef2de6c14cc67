"""Accounts: create, list, IP allowlists, and a sign-in link for an owner."""

from __future__ import annotations

import argparse
import logging
from typing import Any

import rules
from partner_endpoint.cli.common import CommandError, open_database, output
from partner_endpoint.clock import utc_now
from partner_endpoint.dashboard.session_auth import new_token
from partner_endpoint.dashboard.sign_in_pages import LINK_LIFETIME
from partner_endpoint.mail.sign_in_mail import sign_in_url
from partner_endpoint.settings import Settings
from partner_endpoint.store import keys, sessions
from partner_endpoint.store.db import read_transaction, write_transaction

log = logging.getLogger(__name__)


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    actions = commands.add_parser("accounts", help="manage accounts").add_subparsers(
        required=True, metavar="ACTION"
    )
    create = actions.add_parser("create", parents=[common], help="create an account")
    create.add_argument("--email", required=True, help="the owner's address (sign-in, leak mail)")
    create.add_argument("--allow-ip", action="extend", nargs="+", default=[], metavar="CIDR")
    create.set_defaults(run=_create)
    actions.add_parser("list", parents=[common], help="list accounts with their keys").set_defaults(run=_list)
    for action, run, verb in (
        ("allow-ip", _allow_ip, "add addresses or CIDR ranges to"),
        ("disallow-ip", _disallow_ip, "remove addresses or CIDR ranges from"),
    ):
        allowlist = actions.add_parser(
            action, parents=[common], help=f"{verb} an account's IP allowlist (empty: any address)"
        )
        allowlist.add_argument("--account", type=int, required=True)
        allowlist.add_argument("networks", nargs="+", metavar="CIDR")
        allowlist.set_defaults(run=run)
    replace = actions.add_parser(
        "set-allowlist",
        parents=[common],
        help="replace an account's IP allowlist (no --allow-ip: any address); servers follow within 1 s",
    )
    replace.add_argument("--account", type=int, required=True)
    replace.add_argument("--allow-ip", action="extend", nargs="+", default=[], metavar="CIDR")
    replace.set_defaults(run=_set_allowlist)

    link = commands.add_parser(
        "sign-in-link",
        parents=[common],
        help="print a one-time dashboard sign-in link for an owner address (no mail needed)",
        description="Mint a sign-in link for an account owner and print it: for trying the dashboard "
        "without mail, or helping an owner whose mail does not arrive. It works once, for "
        f"{int(LINK_LIFETIME.total_seconds() // 60)} minutes; treat it as a password.",
    )
    link.add_argument("email", help="the owner address of one or more accounts")
    link.set_defaults(run=_sign_in_link)


def _create(args: argparse.Namespace, settings: Settings) -> int:
    with write_transaction(open_database(settings)) as conn:
        account_id = keys.create_account(conn, args.email, args.allow_ip, utc_now())
    output(args, {"account_id": account_id}, f"created account {account_id} for {args.email}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    with read_transaction(open_database(settings)) as conn:
        found = keys.list_accounts(conn)
    data = [
        {
            "account_id": a.account_id,
            "owner_email": a.owner_email,
            "ip_allowlist": list(a.allowlist),
            "created_at": a.created_at,
            "keys": a.keys,
            "active_keys": a.active_keys,
        }
        for a in found
    ]
    human = "\n".join(
        f"{a.account_id}\t{a.owner_email}\t{a.active_keys} active of {a.keys} keys\t"
        f"{', '.join(a.allowlist) or 'any address'}"
        for a in found
    )
    output(args, data, human or "no accounts")
    return 0


def _set_allowlist(args: argparse.Namespace, settings: Settings) -> int:
    with write_transaction(open_database(settings)) as conn:
        keys.set_allowlist(conn, args.account, args.allow_ip, utc_now())
    allowed = ", ".join(args.allow_ip) or "any address"
    data = {"account_id": args.account, "allow_ips": args.allow_ip}
    output(args, data, f"account {args.account}: {allowed}")
    return 0


def _allow_ip(args: argparse.Namespace, settings: Settings) -> int:
    with write_transaction(open_database(settings)) as conn:
        allowlist = keys.allow_ip(conn, args.account, args.networks, utc_now())
    return _show_allowlist(args, allowlist)


def _disallow_ip(args: argparse.Namespace, settings: Settings) -> int:
    with write_transaction(open_database(settings)) as conn:
        allowlist = keys.disallow_ip(conn, args.account, args.networks, utc_now())
    return _show_allowlist(args, allowlist)


def _show_allowlist(args: argparse.Namespace, allowlist: tuple[str, ...]) -> int:
    human = (
        f"account {args.account} allows: {', '.join(allowlist)}"
        if allowlist
        else f"account {args.account} has no allowlist: its keys work from any address"
    )
    output(args, {"account_id": args.account, "ip_allowlist": list(allowlist)}, human)
    return 0


def _sign_in_link(args: argparse.Namespace, settings: Settings) -> int:
    if not settings.dashboard:
        raise CommandError("the dashboard is off (SOUNDPIECE_DASHBOARD=off)")
    email = args.email.strip().lower()
    now = utc_now()
    token = new_token()
    with write_transaction(open_database(settings)) as conn:
        if not keys.accounts_of(conn, email):
            raise CommandError(f"no account has the owner address {args.email}")
        sessions.create_link(conn, rules.identity(token), email, None, now, LINK_LIFETIME)
    log.warning(
        "sign-in link minted on the command line", extra={"fields": {"address_hash": rules.identity(email)}}
    )
    url = sign_in_url(settings.dashboard_url, token)
    output(args, {"url": url, "expires_at": now + LINK_LIFETIME}, url)
    return 0
