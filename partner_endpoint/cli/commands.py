"""The command line's parser and its one error boundary: every failure is one line and exit 2."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from sqlalchemy.exc import SQLAlchemyError

from partner_endpoint.cli import accounts, activity, keys, leaks, revocation_tokens, service, trial
from partner_endpoint.cli.common import CommandError
from partner_endpoint.mail.transport import destination
from partner_endpoint.ops.logs import configure_logging
from partner_endpoint.settings import Settings, SettingsError, declared, shown_default
from partner_endpoint.store.db import NotFound

EXIT_CODES = """\
exit codes:
  0  done
  1  test-alert: the service answered, but did not accept the alert
  2  an error, said in one line on stderr: a bad setting, no database, no such account or key, ..."""


def run(argv: Sequence[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    settings: Settings | None = None
    try:
        settings = Settings.from_env()
        configure_logging(settings.log_level)
        return int(args.run(args, settings) or 0)
    except (SettingsError, CommandError, NotFound, ValueError) as exc:
        return _fail(str(exc))
    except SQLAlchemyError as exc:
        where = settings.shown_database if settings else "?"
        reason = str(getattr(exc, "orig", None) or exc).strip().splitlines()[0]
        return _fail(f"database {where}: {reason}")


def _fail(message: str) -> int:
    print(f"soundpiece-partner: error: {message}", file=sys.stderr)
    return 2


def _parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--json", action="store_true", help="machine-readable output")
    parser = argparse.ArgumentParser(
        prog="soundpiece-partner",
        description="Run the Soundpiece partner endpoint; manage accounts, keys and leaks; "
        "try an alert locally.",
        epilog=_epilog(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(required=True, metavar="COMMAND")
    for part in (service, accounts, keys, leaks, revocation_tokens, activity, trial):
        part.register(commands, common)
    return parser


def _epilog() -> str:
    """Where the data is now, every setting with its default, and the exit codes."""
    try:
        settings = Settings.from_env()
        now = (
            f"in use now:\n  database  {settings.shown_database}\n  data      {settings.data}\n"
            f"  mail      {destination(settings)}"
        )
    except SettingsError as exc:
        now = f"in use now: none (the configuration is invalid: {exc})"
    width = max(len(s.variable) for s in declared())
    variables = "\n".join(f"  {s.variable:<{width}}  {shown_default(s).replace('`', '')}" for s in declared())
    return (
        f"{now}\n\nconfiguration: environment variables (defaults below; `soundpiece-partner config` shows "
        f"the values in use, docs/configuration.md what each means):\n{variables}\n\n{EXIT_CODES}"
    )
