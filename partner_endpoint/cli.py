"""``soundpiece-partner``: run the service and the mail worker, manage accounts, keys and leaks."""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import Engine

from partner_endpoint.clock import utc_now
from partner_endpoint.labels import clean_label
from partner_endpoint.logs import configure_logging
from partner_endpoint.metrics import Metrics
from partner_endpoint.secretbox import SecretBox, load_secret_box
from partner_endpoint.settings import Settings, SettingsError
from partner_endpoint.store import keys
from partner_endpoint.store.db import make_engine, read_transaction, write_transaction
from partner_endpoint.store.leaks import list_leaks
from partner_endpoint.store.migrate import migrate
from partner_endpoint.text import URL_LIMIT, one_line


def main(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        return int(args.run(args, settings) or 0)
    except (SettingsError, keys.NotFound, ValueError) as exc:
        print(f"soundpiece-partner: error: {exc}", file=sys.stderr)
        return 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(prog="soundpiece-partner", description=__doc__)
    commands = parser.add_subparsers(required=True, metavar="COMMAND")

    serve = commands.add_parser("serve", parents=[common], help="run the HTTP service")
    serve.add_argument("--host", default="0.0.0.0")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("mail-worker", parents=[common], help="send queued mail (standalone)")
    worker.add_argument("--once", action="store_true", help="send what is due, then exit")
    worker.set_defaults(run=_mail_worker)

    commands.add_parser("migrate", parents=[common], help="upgrade the database schema").set_defaults(
        run=_migrate
    )

    account_commands = commands.add_parser("accounts", help="manage accounts").add_subparsers(
        required=True, metavar="ACTION"
    )
    create_account = account_commands.add_parser("create", parents=[common], help="create an account")
    create_account.add_argument("--email", required=True)
    create_account.add_argument("--allow-ip", action="extend", nargs="+", default=[], metavar="CIDR")
    create_account.set_defaults(run=_accounts_create)
    for action, run, verb in (
        ("allow-ip", _accounts_allow_ip, "add addresses or CIDR ranges to"),
        ("disallow-ip", _accounts_disallow_ip, "remove addresses or CIDR ranges from"),
    ):
        allowlist = account_commands.add_parser(
            action, parents=[common], help=f"{verb} an account's IP allowlist (empty: any address)"
        )
        allowlist.add_argument("--account", type=int, required=True)
        allowlist.add_argument("networks", nargs="+", metavar="CIDR")
        allowlist.set_defaults(run=run)
    set_allowlist = account_commands.add_parser(
        "set-allowlist",
        parents=[common],
        help="replace an account's IP allowlist (no --allow-ip: any address); servers follow within 1 s",
    )
    set_allowlist.add_argument("--account", type=int, required=True)
    set_allowlist.add_argument("--allow-ip", action="extend", nargs="+", default=[], metavar="CIDR")
    set_allowlist.set_defaults(run=_accounts_set_allowlist)

    key_commands = commands.add_parser("keys", help="manage API keys").add_subparsers(
        required=True, metavar="ACTION"
    )
    create_key = key_commands.add_parser("create", parents=[common], help="mint a key pair (shown once)")
    create_key.add_argument("--account", type=int, required=True)
    create_key.add_argument("--label", required=True)
    create_key.set_defaults(run=_keys_create)
    list_keys = key_commands.add_parser("list", parents=[common], help="list an account's keys")
    list_keys.add_argument("--account", type=int, required=True)
    list_keys.set_defaults(run=_keys_list)
    revoke = key_commands.add_parser("revoke", parents=[common], help="revoke a key and its signing secret")
    revoke.add_argument("key_id", type=int)
    revoke.set_defaults(run=_keys_revoke)

    leak_commands = commands.add_parser("leaks", help="reported leaks").add_subparsers(
        required=True, metavar="ACTION"
    )
    leak_commands.add_parser("list", parents=[common], help="list leak events").set_defaults(run=_leaks_list)
    return parser


def _output(args: argparse.Namespace, data: Any, human: str) -> None:
    print(json.dumps(data, default=_json_default, indent=2) if args.json else human)


def _json_default(value: object) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _store(settings: Settings) -> Engine:
    """The engine, with the schema brought up to date."""
    engine = make_engine(settings.database_url)
    migrate(engine)
    return engine


def _keyed_store(settings: Settings) -> tuple[Engine, SecretBox]:
    """:func:`_store` and the encryption key, for the commands that use or write secrets (serve,
    mail-worker, migrate, keys create): a key that cannot decrypt what the database holds is refused
    (SettingsError) before the schema is touched."""
    engine = make_engine(settings.database_url)
    box = load_secret_box(settings, keys.stored_secret_samples(engine))
    migrate(engine)
    return engine, box


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from partner_endpoint.memory import limit_malloc_arenas
    from partner_endpoint.server.run import serve

    limit_malloc_arenas()  # before any thread or worker process exists
    _keyed_store(settings)[0].dispose()  # check the key and migrate once, before the workers start
    return serve(settings, args.host, args.port, args.workers)


def _mail_worker(args: argparse.Namespace, settings: Settings) -> int:
    from partner_endpoint.mail.worker import MailWorker

    engine, box = _keyed_store(settings)
    worker = MailWorker.from_settings(engine, settings, Metrics(), box=box)

    async def run() -> int:
        if args.once:
            return await worker.run_once()
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(signum, stop.set)
        await worker.run_forever(stop)
        return 0

    sent = asyncio.run(run())
    if args.once:
        _output(args, {"sent": sent}, f"sent {sent} mail(s)")
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    _keyed_store(settings)[0].dispose()
    _output(args, {"migrated": True}, "database schema is up to date")
    return 0


def _accounts_create(args: argparse.Namespace, settings: Settings) -> int:
    with write_transaction(_store(settings)) as conn:
        account_id = keys.create_account(conn, args.email, args.allow_ip, utc_now())
    _output(args, {"account_id": account_id}, f"created account {account_id}")
    return 0


def _accounts_set_allowlist(args: argparse.Namespace, settings: Settings) -> int:
    with write_transaction(_store(settings)) as conn:
        keys.set_allowlist(conn, args.account, args.allow_ip, utc_now())
    allowed = ", ".join(args.allow_ip) or "any address"
    _output(
        args, {"account_id": args.account, "allow_ips": args.allow_ip}, f"account {args.account}: {allowed}"
    )
    return 0


def _accounts_allow_ip(args: argparse.Namespace, settings: Settings) -> int:
    with write_transaction(_store(settings)) as conn:
        allowlist = keys.allow_ip(conn, args.account, args.networks, utc_now())
    return _show_allowlist(args, allowlist)


def _accounts_disallow_ip(args: argparse.Namespace, settings: Settings) -> int:
    with write_transaction(_store(settings)) as conn:
        allowlist = keys.disallow_ip(conn, args.account, args.networks, utc_now())
    return _show_allowlist(args, allowlist)


def _show_allowlist(args: argparse.Namespace, allowlist: tuple[str, ...]) -> int:
    human = (
        f"account {args.account} allows: {', '.join(allowlist)}"
        if allowlist
        else f"account {args.account} has no allowlist: its keys work from any address"
    )
    _output(args, {"account_id": args.account, "ip_allowlist": list(allowlist)}, human)
    return 0


def _keys_create(args: argparse.Namespace, settings: Settings) -> int:
    label = clean_label(args.label)  # the dashboard's rule: LabelError is a ValueError, exit 2
    engine, box = _keyed_store(settings)
    with write_transaction(engine) as conn:
        new = keys.create_key(conn, box, args.account, label, utc_now())
    data = {
        "key_id": new.key_id,
        "label": new.label,
        "key": new.api_key,
        "signing_secret": new.signing_secret,
    }
    human = (
        f"created key {new.key_id} ({new.label}). Shown once, store them now:\n"
        f"  API key:        {new.api_key}\n  signing secret: {new.signing_secret}"
    )
    _output(args, data, human)
    return 0


def _keys_list(args: argparse.Namespace, settings: Settings) -> int:
    with read_transaction(_store(settings)) as conn:
        records = keys.list_keys(conn, args.account)
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
    human = human or "no keys"
    _output(args, data, human)
    return 0


def _keys_revoke(args: argparse.Namespace, settings: Settings) -> int:
    with write_transaction(_store(settings)) as conn:
        changed = keys.revoke_key(conn, args.key_id, utc_now())
    state = "revoked" if changed else "was already revoked"
    _output(args, {"key_id": args.key_id, "revoked": True, "changed": changed}, f"key {args.key_id} {state}")
    return 0


def _leaks_list(args: argparse.Namespace, settings: Settings) -> int:
    with read_transaction(_store(settings)) as conn:
        leaks = list_leaks(conn)
    # url and source are the alert sender's text: one_line keeps their ESC, CR and LF off the terminal.
    human = (
        "\n".join(
            f"{e['last_seen']:%Y-%m-%d %H:%M}\tkey {e['key_id']}\t{e['action']}\t"
            f"{one_line(str(e['source']))}\t{one_line(str(e['url']), URL_LIMIT)}"
            for e in leaks
        )
        or "no leaks"
    )
    _output(args, leaks, human)
    return 0


if __name__ == "__main__":
    sys.exit(main())
