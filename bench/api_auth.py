#!/usr/bin/env python
"""The API's hot path, Bearer authentication (not a test): ``/v1/whoami`` against the bare ceiling.

Starts, on 127.0.0.1 only and one after another: the bare Starlette app of
``endpoint_load.py`` (an async ``/v1/whoami`` that returns fixed JSON: the ceiling), then
``soundpiece-partner serve --workers 2`` on a fresh SQLite database (or ``--database-url``)
three times: as shipped, with the failure limit off (so never-issued keys are answered 401, not
429), and with the key cache off (every request reads the database, as before the cache). wrk
drives each phase for ``--seconds`` with ``--connections`` connections and reports requests/s and
p50/p99 latency:

* ``bare_whoami``: the ceiling;
* ``whoami_issued``: 20 issued keys in rotation (the cache's hit path);
* ``whoami_never_issued_repeated``: 200 never-issued keys in rotation (negative cache);
* ``whoami_never_issued_distinct``: a different never-issued key every request (database reads,
  at most 4 at a time per worker);
* ``whoami_rate_limited``: never-issued keys from one client as shipped (429 after 30 failures);
* ``whoami_issued_uncached``: the issued keys with ``SOUNDPIECE_AUTH_CACHE_SIZE=0``;
* ``healthz``: one database read per request.

Targets (issue 16, with traffic recorded per key and address): ``whoami_issued`` at least 60 % of
``bare_whoami`` with p99 at most 10 ms.
Usage: .venv/bin/python bench/api_auth.py [--seconds 5] [--connections 16] [--json FILE]
"""

from __future__ import annotations

import sys
import tempfile
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from endpoint_load import (
    WRK_DONE,
    bare_server,
    free_port,
    issue_bench_keys,
    load_arguments,
    process,
    report,
    run_wrk,
    serve_command,
    wrk_missing,
)
from sqlalchemy.engine import make_url

import rules
from tests.support.services import service_env

WHOAMI = "/v1/whoami"
TARGET_SHARE = 0.60
TARGET_P99_MS = 10.0
GET_SCRIPT = r"""
local requests = {}
local index = 0
init = function(args)
  for _, token in ipairs(TOKENS) do
    table.insert(requests, wrk.format("GET", PATH, {["Authorization"] = "Bearer " .. token}))
  end
  if #requests == 0 then table.insert(requests, wrk.format("GET", PATH)) end
end
request = function()
  index = index % #requests + 1
  return requests[index]
end
"""


def get_script(path: Path, url_path: str, tokens: list[str]) -> Path:
    """A wrk script sending GET ``url_path`` with each token in turn (no Authorization if none)."""
    listed = ",\n".join(f'"{t}"' for t in tokens)
    path.write_text(f'PATH = "{url_path}"\nTOKENS = {{\n{listed}\n}}\n{GET_SCRIPT}{WRK_DONE}')
    return path


def share(figures: dict[str, Any], phase: str) -> float:
    return round(figures[phase]["requests_per_s"] / figures["bare_whoami"]["requests_per_s"], 3)


def main() -> int:
    args = load_arguments(__doc__ or "")
    seconds = args.seconds
    if wrk_missing():
        return 2

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        database_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
        secret_key, issued = issue_bench_keys(database_url, 20)

        issued_script = get_script(tmp / "issued.lua", WHOAMI, [new.api_key for new in issued])
        repeated = get_script(tmp / "repeated.lua", WHOAMI, [rules.API_KEY.mint() for _ in range(200)])
        # More distinct keys than any run sends: every request is a miss.
        distinct = get_script(
            tmp / "distinct.lua", WHOAMI, [rules.API_KEY.mint() for _ in range(20_000 * seconds)]
        )
        healthz = get_script(tmp / "healthz.lua", "/healthz", [])
        env = service_env(
            database_url=database_url,
            secret_key=secret_key,
            mail_dir=str(tmp / "outbox"),
            log_level="WARNING",
            mail_worker="off",
        )

        figures: dict[str, Any] = {
            "database": make_url(database_url).get_backend_name(),
            "workers": args.workers,
            "connections": args.connections,
            "seconds": seconds,
        }

        def measure(name: str, port: int, script: Path, path: str = WHOAMI) -> None:
            figures[name] = run_wrk(port, script, seconds, args.connections, path=path)
            print(f"[bench] {name}: {figures[name]}", file=sys.stderr, flush=True)

        def serve(stack: ExitStack, **variant: str) -> int:
            """``serve`` as shipped, or with ``variant`` settings (name=value); returns its port."""
            port = free_port()
            stack.enter_context(
                process(
                    serve_command(port, args.workers),
                    env | {f"SOUNDPIECE_{k.upper()}": v for k, v in variant.items()},
                    port,
                )
            )
            return port

        port = free_port()
        with process(bare_server(tmp, port, args.workers), env, port):
            run_wrk(port, issued_script, 1, args.connections, path=WHOAMI)  # warm-up
            measure("bare_whoami", port, issued_script)

        with ExitStack() as stack:
            port = serve(stack)
            run_wrk(port, issued_script, 1, args.connections, path=WHOAMI)  # warm-up: both workers cache
            measure("whoami_issued", port, issued_script)
            measure("whoami_rate_limited", port, repeated)
            measure("healthz", port, healthz, "/healthz")

        with ExitStack() as stack:
            port = serve(stack, auth_failure_limit="0")
            run_wrk(port, repeated, 1, args.connections, path=WHOAMI)  # warm-up: the negative cache fills
            measure("whoami_never_issued_repeated", port, repeated)
            measure("whoami_never_issued_distinct", port, distinct)

        with ExitStack() as stack:
            port = serve(stack, auth_cache_size="0")
            run_wrk(port, issued_script, 1, args.connections, path=WHOAMI)
            measure("whoami_issued_uncached", port, issued_script)

    figures["whoami_issued_share_of_bare"] = share(figures, "whoami_issued")
    figures["target_met"] = (
        figures["whoami_issued_share_of_bare"] >= TARGET_SHARE
        and figures["whoami_issued"]["p99_ms"] <= TARGET_P99_MS
        and figures["whoami_issued"]["non_2xx"] == 0
    )
    report(figures, args.json)
    return 0


if __name__ == "__main__":
    sys.exit(main())
