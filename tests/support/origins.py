"""Plays each platform that reports leaks: its header names and entry shape as its documentation gives them
(written out here from the sources in docs/leak-report-origins.md, not read from the code under
test), signed with ``cryptography`` directly (:class:`tests.support.github.Signer`)."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select

from partner_endpoint.clock import SYSTEM_CLOCK
from partner_endpoint.store.db import make_engine, read_transaction, write_transaction
from partner_endpoint.store.models import leak_events, mail_outbox
from partner_endpoint.store.secretbox import SecretBox
from tests.support.github import KeyServer, Signer
from tests.support.partner import Issued, add_account, add_key
from tests.support.processes import HANG_GUARD
from tests.support.services import ServerProcess, partner_cli, service_env


@dataclass(frozen=True)
class Platform:
    name: str
    shown: str
    """Its name in our answers ("Invalid GitLab signature")."""
    route: str
    key_id_header: str
    signature_header: str
    sends_source: bool
    url: str
    """An example of where it says a token was found."""

    def body(self, *tokens: str, url: str | None = None) -> bytes:
        """A report of ``tokens``, one entry each, typed by prefix, in the platform's members."""
        entries: list[dict[str, Any]] = []
        for token in tokens:
            entry = {
                "type": "soundpiece_webhook_secret" if token.startswith("whsec_") else "soundpiece_api_key",
                "token": token,
                "url": self.url if url is None else url,
            }
            if self.sends_source:
                entry["source"] = "content"
            entries.append(entry)
        return json.dumps(entries, separators=(",", ":")).encode()

    def headers(self, signer: Signer, body: bytes, *, key_id: str | None = None) -> dict[str, str]:
        return {
            self.key_id_header: signer.key_id if key_id is None else key_id,
            self.signature_header: signer.signature(body),
            "Content-Type": "application/json",
        }

    def post(
        self,
        client: httpx.Client,
        base: str,
        signer: Signer,
        body: bytes,
        extra: dict[str, str] | None = None,
    ) -> Any:
        """POST a report signed by ``signer``; ``extra`` headers are added (or override)."""
        return client.post(
            f"{base}{self.route}", content=body, headers={**self.headers(signer, body), **(extra or {})}
        )


GITHUB = Platform(
    "github",
    "GitHub",
    "/v1/secret-scanning/github",
    "Github-Public-Key-Identifier",
    "Github-Public-Key-Signature",
    sends_source=True,
    url="https://github.com/octo-org/octo-repo/blob/0123abc/.env",
)
DEPS_DEV = Platform(  # Warehouse writes them in capitals (warehouse/integrations/secrets/config.py)
    "deps.dev",
    "deps.dev",
    "/v1/secret-scanning/deps.dev",
    "GOSST-PUBLIC-KEY-IDENTIFIER",
    "GOSST-PUBLIC-KEY-SIGNATURE",
    sends_source=True,
    url="https://files.pythonhosted.org/packages/ab/cd/octo_package-1.0.0.tar.gz",
)
GITLAB = Platform(
    "gitlab",
    "GitLab",
    "/v1/secret-scanning/gitlab",
    "Gitlab-Public-Key-Identifier",
    "Gitlab-Public-Key-Signature",
    sends_source=False,
    url="https://gitlab.com/octo-org/octo-repo/-/raw/0123abc/config/settings.py",
)
PLATFORMS = (GITHUB, DEPS_DEV, GITLAB)

REVOCABLE_TYPES = ["gitleaks_rule_id_soundpiece_api_key", "gitleaks_rule_id_soundpiece_webhook_secret"]
"""What a self-managed GitLab instance calls findings of custom rules with those ids: ``gitleaks_rule_id_``
and the rule id (gitlab's ScanSecurityReportSecretsWorker#revocation_type)."""


class Deployment:
    """``serve`` with every origin and the revocation API on, each platform's key document served by a
    real HTTP server on loopback, and the SQLite database the tests read and arrange state in."""

    def __init__(self, folder: Path, **settings: str) -> None:
        self.signers = {platform.name: Signer() for platform in PLATFORMS}
        self.key_servers = {name: KeyServer(signer.document) for name, signer in self.signers.items()}
        self.secret_key = Fernet.generate_key().decode()
        self.database_url = f"sqlite:///{folder / 'soundpiece.db'}"
        self.env = service_env(
            data_dir=str(folder / "data"),
            database_url=self.database_url,
            secret_key=self.secret_key,
            github_keys_url=self.key_servers["github"].url,
            depsdev_alerts="on",
            depsdev_keys_url=self.key_servers["deps.dev"].url,
            gitlab_alerts="on",
            gitlab_keys_url=self.key_servers["gitlab"].url,
            revocation_api="on",
            trusted_proxy_header="X-Forwarded-For",  # so each test can be a client of its own
            mail_worker="off",
            **settings,
        )
        self.server = ServerProcess(self.env, folder, "serve")
        self.http = httpx.Client(timeout=60)
        self.engine: Engine | None = None
        self._clients = itertools.count(1)

    def __enter__(self) -> Deployment:
        self.server.start(HANG_GUARD)
        self.engine = make_engine(self.database_url)
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.stop()
        self.http.close()
        if self.engine is not None:
            self.engine.dispose()
        for key_server in self.key_servers.values():
            key_server.close()

    @property
    def db(self) -> Engine:
        assert self.engine is not None
        return self.engine

    def client(self) -> dict[str, str]:
        """The header that makes a request come from a client of its own (its own failure budget)."""
        number = next(self._clients)
        return {"X-Forwarded-For": f"198.51.{number // 250}.{number % 250 + 1}"}

    def issue(self, label: str = "production") -> Issued:
        with write_transaction(self.db) as conn:
            now = SYSTEM_CLOCK.now()
            account_id = add_account(conn, "owner@example.com", [], now)
            new = add_key(conn, SecretBox([self.secret_key]), account_id, label, now)
        return Issued(account_id, new.key_id, new.api_key, new.signing_secret)

    def report(
        self,
        platform: Platform,
        body: bytes,
        signer: Signer | None = None,
        extra: dict[str, str] | None = None,
    ) -> Any:
        signer = signer or self.signers[platform.name]
        return platform.post(self.http, self.server.url, signer, body, {**self.client(), **(extra or {})})

    def whoami(self, api_key: str) -> int:
        return self.http.get(
            f"{self.server.url}/v1/whoami", headers={"Authorization": f"Bearer {api_key}"}
        ).status_code

    def sightings(self, key_id: int) -> list[tuple[str, str]]:
        """(origin, url) of each leak event of a key, oldest first."""
        with read_transaction(self.db) as conn:
            rows = conn.execute(
                select(leak_events.c.origin, leak_events.c.url)
                .where(leak_events.c.key_id == key_id)
                .order_by(leak_events.c.id)
            )
            return [(str(origin), str(url)) for origin, url in rows]

    def mails(self, key_id: int) -> list[dict[str, Any]]:
        with read_transaction(self.db) as conn:
            rows = conn.execute(select(mail_outbox).where(mail_outbox.c.key_id == key_id)).mappings()
            return [dict(row) for row in rows]

    def cli(self, *args: str) -> Any:
        """``soundpiece-partner ARGS --json`` on this deployment's data: its JSON answer."""
        return partner_cli(self.env, *args)
