"""``soundpiece-partner``: run the service, manage accounts, keys and leaks, try an alert locally.

This module imports nothing beyond the standard library, so that a ``pip install .`` without the
``[endpoint]`` extra gets one line saying what to install instead of a traceback.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence

EXTRA_MODULES = frozenset(
    (
        "sqlalchemy",
        "starlette",
        "uvicorn",
        "alembic",
        "aiosmtplib",
        "jinja2",
        "prometheus_client",
        "platformdirs",
    )
)
"""Top-level modules that only the ``[endpoint]`` extra installs."""


def main(argv: Sequence[str] | None = None) -> int:
    try:
        from partner_endpoint.cli.commands import run
    except ModuleNotFoundError as exc:
        if exc.name is None or exc.name.split(".")[0] not in EXTRA_MODULES:
            raise
        print(
            f"soundpiece-partner: error: the endpoint's dependencies are not installed ({exc.name} is "
            "missing): pip install 'soundpiece-secret-defence[endpoint]' "
            "(from a checkout: pip install '.[endpoint]')",
            file=sys.stderr,
        )
        return 2
    return run(argv)
