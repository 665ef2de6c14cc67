"""Running the service: ``serve``, ``mail-worker``, ``migrate``, and ``config`` to see its settings."""

from __future__ import annotations

import argparse
import asyncio
import signal
from typing import Any

from partner_endpoint.cli.common import open_keyed, output, sqlite_file
from partner_endpoint.ops.metrics import Metrics
from partner_endpoint.settings import Settings, effective, reference


def register(commands: Any, common: argparse.ArgumentParser) -> None:
    serve = commands.add_parser(
        "serve",
        parents=[common],
        help="run the HTTP service (creates the database if need be)",
        description="Run the alert receiver, the API and the dashboard. Listens on loopback unless "
        "--host says otherwise (the container image passes --host 0.0.0.0).",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8000, help="port (default: 8000)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default: 1)")
    serve.set_defaults(run=_serve)

    worker = commands.add_parser("mail-worker", parents=[common], help="send queued mail (standalone)")
    worker.add_argument("--once", action="store_true", help="send what is due, then exit")
    worker.set_defaults(run=_mail_worker)

    commands.add_parser(
        "migrate", parents=[common], help="create the database or bring its schema up to date"
    ).set_defaults(run=_migrate)

    config = commands.add_parser(
        "config", parents=[common], help="the settings in use (secrets hidden), or --reference"
    )
    config.add_argument(
        "--reference",
        action="store_true",
        help="every setting explained, as Markdown (docs/configuration.md)",
    )
    config.set_defaults(run=_config)


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    from partner_endpoint.server.memory import limit_malloc_arenas
    from partner_endpoint.server.run import serve

    limit_malloc_arenas()  # before any thread or worker process exists
    open_keyed(settings, create=True)[0].dispose()  # check the key and migrate once, before the workers
    return serve(settings, args.host, args.port, args.workers)


def _mail_worker(args: argparse.Namespace, settings: Settings) -> int:
    from partner_endpoint.mail.worker import MailWorker

    engine, box = open_keyed(settings)
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
        output(args, {"sent": sent}, f"sent {sent} mail(s)")
    return 0


def _migrate(args: argparse.Namespace, settings: Settings) -> int:
    path = sqlite_file(settings)
    created = path is not None and not path.exists()
    open_keyed(settings, create=True)[0].dispose()
    done = "created" if created else "schema up to date"
    data = {"migrated": True, "created": created, "database": settings.shown_database}
    output(args, data, f"database {settings.shown_database}: {done}")
    return 0


def _config(args: argparse.Namespace, settings: Settings) -> int:
    if args.reference:
        print(reference(), end="")
        return 0
    rows = effective(settings)
    width = max(len(variable) for variable, _value, _source in rows)
    human = "\n".join(f"{variable:<{width}}  {value}  ({source})" for variable, value, source in rows)
    output(args, {variable: value for variable, value, _source in rows}, human)
    return 0
