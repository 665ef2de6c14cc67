"""The README and docs/ as a newcomer follows them: every service command they show is one the
command line accepts, and every relative link leads to a file that exists."""

from __future__ import annotations

import re
import shlex
from pathlib import Path

import pytest

from partner_endpoint.cli.commands import _parser

ROOT = Path(__file__).resolve().parents[1]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_FENCE = re.compile(r"```(?:sh|bash)?\n(.*?)```", re.DOTALL)
_COMMAND = re.compile(r"^(?:[A-Z_]+=\S+\s+)*(?:scripts/partner|(?:\S*/)?soundpiece-partner)\s+(.*)$")
_LINK = re.compile(r"\]\(([^)#\s]+)(?:#[^)]*)?\)")


def _commands() -> list[tuple[str, str]]:
    found = []
    for page in PAGES:
        for block in _FENCE.findall(page.read_text()):
            for line in block.splitlines():
                if match := _COMMAND.match(line.split(" #")[0].strip()):
                    found.append((page.name, match.group(1)))
    return found


COMMANDS = _commands()


def test_the_pages_show_the_service_commands() -> None:
    shown = {args.split()[0] for _page, args in COMMANDS}
    assert {"migrate", "serve", "accounts", "sign-in-link", "test-alert", "leaks"} <= shown


@pytest.mark.parametrize(("page", "args"), COMMANDS, ids=[f"{p}: {a}" for p, a in COMMANDS])
def test_every_command_shown_is_accepted(page: str, args: str) -> None:
    try:
        _parser().parse_args(shlex.split(args))
    except SystemExit as exc:
        pytest.fail(f"{page}: `soundpiece-partner {args}` is refused (exit {exc.code})")


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.name)
def test_every_relative_link_leads_somewhere(page: Path) -> None:
    for target in _LINK.findall(page.read_text()):
        if "://" in target or target.startswith("mailto:"):
            continue
        assert (page.parent / target).exists(), f"{page.name} links to {target}, which is not there"
