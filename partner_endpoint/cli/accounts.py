"""Accounts: create, list, IP allowlists, and a sign-in link for an owner."""

from __future__ import annotations

import argparse
import logging
from typing import Any

import rules
from partner_endpoint.cli.common import CommandError, open_database, output
from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.mail.sign_in_mail import sign_in_url
from partner_endpoint.services.accounts import AccountService
from partner_endpoint.services.sign_in import LINK_LIFETIME, Limits, SignInService
from partner_endpoint.settings import Settings

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


def _accounts(settings: Settings) -> AccountService:
    return AccountService(open_database(settings), SYSTEM_CLOCK)


def _create(args: argparse.Namespace, settings: Settings) -> int:
    account_id = _accounts(settings).create(args.email, args.allow_ip)
    output(args, {"account_id": account_id}, f"created account {account_id} for {args.email}")
    return 0


def _list(args: argparse.Namespace, settings: Settings) -> int:
    found = _accounts(settings).summaries()
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
    allowlist = _accounts(settings).set_allowlist(args.account, args.allow_ip)
    data = {"account_id": args.account, "allow_ips": list(allowlist)}
    output(args, data, f"account {args.account}: {', '.join(allowlist) or 'any address'}")
    return 0


def _allow_ip(args: argparse.Namespace, settings: Settings) -> int:
    return _show_allowlist(args, _accounts(settings).allow(args.account, args.networks))


def _disallow_ip(args: argparse.Namespace, settings: Settings) -> int:
    return _show_allowlist(args, _accounts(settings).disallow(args.account, args.networks))


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
    limits = Limits.from_settings(settings)
    service = SignInService(
        open_database(settings), None, SYSTEM_CLOCK, limits=limits, sender=settings.mail_from
    )
    email = args.email.strip()
    token = service.mint_link(email)
    log.warning(
        "sign-in link minted on the command line",
        extra={"fields": {"address_hash": rules.identity(email.lower())}},
    )
    url = sign_in_url(settings.dashboard_url, token)
    output(args, {"url": url, "expires_at": SYSTEM_CLOCK.now() + LINK_LIFETIME}, url)
    return 0
