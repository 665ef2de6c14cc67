"""The owner sees which platform reported a leak: in the mail, the dashboard's leak table, ``leaks list``."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Callable

import pytest
from hypothesis import given
from hypothesis import strategies as st
from sqlalchemy import Engine

from partner_endpoint.domain.reported_by import REGISTRY_HOSTS, found_where, registry, reported_by
from partner_endpoint.settings import Settings
from partner_endpoint.store.models import api_keys
from tests.support.dashboard import PREFIX, Browser, text_of
from tests.support.github import Signer
from tests.support.origins import DEPS_DEV, GITHUB, GITLAB
from tests.support.partner import Issued, TestClient, rows
from tests.support.services import PARTNER as CLI

PYPI_FILE = "https://files.pythonhosted.org/packages/ab/cd/octo_package-1.0.0.tar.gz"


@pytest.mark.parametrize(
    ("origin", "url", "shown"),
    [
        ("github", GITHUB.url, "GitHub"),
        ("gitlab", GITLAB.url, "GitLab"),
        ("gitlab-self-managed", "https://gitlab.example.com/g/p/-/raw/abc/x.py", "GitLab (self-managed)"),
        ("deps.dev", PYPI_FILE, "deps.dev, in a package on PyPI"),
        ("deps.dev", "https://deps.dev/npm/left-pad/1.3.0", "deps.dev, in a package on npm"),
        (
            "deps.dev",
            "https://registry.npmjs.org/left-pad/-/left-pad-1.3.0.tgz",
            "deps.dev, in a package on npm",
        ),
        ("deps.dev", "https://pypi.org.example.com/x", "deps.dev, in a package in a public registry"),
        ("deps.dev", "", "deps.dev, in a package in a public registry"),
        ("a-platform-of-a-later-version", "https://x", "a leak report"),
    ],
)
def test_the_reporting_platform_as_shown(origin: str, url: str, shown: str) -> None:
    assert reported_by(origin, url) == shown


@given(st.text(max_size=300))
def test_any_url_names_a_known_registry_or_none(url: str) -> None:
    assert registry(url) in {*REGISTRY_HOSTS.values(), "the Go module mirror", None}


@given(
    host=st.sampled_from(sorted(REGISTRY_HOSTS)),
    before=st.text("abcxyz.-", max_size=8),
    after=st.text("abcxyz.-", min_size=1, max_size=8),
)
def test_only_a_registrys_own_host_counts(host: str, before: str, after: str) -> None:
    """``pypi.org.evil.example`` or ``notpypi.org`` is no registry: "in a package on PyPI" must be true."""
    assert registry(f"https://{host}/p") == REGISTRY_HOSTS[host]
    assert registry(f"https://{before}{host}{after}/p") is None
    assert registry(f"https://{before}{after}{host}/p") is None
    assert found_where("github", f"https://{host}/p") == "in public"  # only deps.dev scans packages


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_the_mail_and_the_dashboard_name_the_platform(
    open_browser: Callable[..., Browser],
    origins_on: dict[str, object],
    signers: dict[str, Signer],
    issue: Callable[..., Issued],
    engine: Engine,
) -> None:
    issue(email="owner@example.com")
    browser = open_browser(**origins_on)
    browser.sign_in("owner@example.com")
    _reveal, gitlab_key, _secret = browser.create_key("found on gitlab")
    _reveal, deps_key, _secret = browser.create_key("found in a package")
    for platform, token, url in ((GITLAB, gitlab_key, GITLAB.url), (DEPS_DEV, deps_key, PYPI_FILE)):
        body = platform.body(token, url=url)
        headers = platform.headers(signers[platform.name], body)
        assert browser.client.post(platform.route, content=body, headers=headers).status_code in (200, 204)
    by_label = {message["Subject"].split('"')[1]: text_of(message) for message in browser.mailbox.deliver()}
    first_lines = {label: text.splitlines()[2] for label, text in by_label.items()}
    assert first_lines["found on gitlab"] == (
        'GitLab secret detection found your Soundpiece API key "found on gitlab" '
        f"(ending in {gitlab_key[-4:]}) in public."
    )
    assert first_lines["found in a package"] == (
        'deps.dev (Google\'s Open Source Insights) found your Soundpiece API key "found in a package" '
        f"(ending in {deps_key[-4:]}) in a package on PyPI."
    )
    listing = browser.get(f"{PREFIX}/keys").text
    key_ids = {row["label"]: row["id"] for row in rows(engine, api_keys)}
    pages = {label: browser.get(f"{PREFIX}/keys/{key_ids[label]}").text for label in by_label}
    assert "2 keys were found in public" in listing
    assert '<td data-label="Reported by">GitLab</td>' in pages["found on gitlab"]
    assert '<td data-label="Reported by">deps.dev, in a package on PyPI</td>' in pages["found in a package"]


@pytest.mark.parametrize("database_url", ["sqlite"], indirect=True)
def test_leaks_list_names_the_platform(
    settings: Settings, every_origin: TestClient, signers: dict[str, Signer], issue: Callable[..., Issued]
) -> None:
    victim = issue()
    body = GITLAB.body(victim.api_key)
    headers = GITLAB.headers(signers["gitlab"], body)
    assert every_origin.post(GITLAB.route, content=body, headers=headers).status_code == 204
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("SOUNDPIECE_")},
        "SOUNDPIECE_DATABASE_URL": settings.database_url,
        "SOUNDPIECE_SECRET_KEY": str(settings.secret_key),
        "SOUNDPIECE_LOG_LEVEL": "WARNING",
    }
    (line,) = subprocess.run(
        [CLI, "leaks", "list"], env=env, capture_output=True, text=True, timeout=60, check=True
    ).stdout.splitlines()
    assert line.split("\t")[2:] == ["revoked", "GitLab", "", GITLAB.url]  # GitLab sends no source
