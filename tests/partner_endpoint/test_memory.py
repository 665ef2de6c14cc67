"""The arena cap reaches the server's worker processes (the soak's memory plateau depends on it)."""

from __future__ import annotations

import os
import subprocess
import sys


def test_serve_caps_malloc_arenas_for_itself_and_its_workers() -> None:
    code = (
        "import os\n"
        "os.environ.pop('MALLOC_ARENA_MAX', None)\n"
        "from partner_endpoint.server.memory import limit_malloc_arenas, ARENAS\n"
        "limit_malloc_arenas()\n"
        "import subprocess, sys\n"
        "out = subprocess.run([sys.executable, '-c', 'import os; print(os.environ[\"MALLOC_ARENA_MAX\"])'],"
        " capture_output=True, text=True).stdout.strip()\n"
        "assert out == str(ARENAS), out\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "MALLOC_ARENA_MAX"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "ok", result.stderr


def test_an_operators_choice_is_kept() -> None:
    code = (
        "from partner_endpoint.server.memory import limit_malloc_arenas\n"
        "import os\n"
        "limit_malloc_arenas()\n"
        "print(os.environ['MALLOC_ARENA_MAX'])\n"
    )
    env = {**os.environ, "MALLOC_ARENA_MAX": "7"}
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env)
    assert result.stdout.strip() == "7", result.stderr
