"""The platforms that report leaked credentials to us, as data: one row per signed origin. Pure.

GitHub, deps.dev and GitLab.com each POST a JSON array of reported tokens to a route of their own,
signed (ECDSA P-256, SHA-256, over the raw body) by a key their key document publishes. What
differs between them is data: the header names, the document, an entry's fields and the answer
they expect; so one receiver serves them all, and a fourth origin is a row here, its switch and
key document settings (``settings.py``) and a test. The facts and their sources:
``docs/leak-report-origins.md``.

Self-managed GitLab instances report through the Token Revocation API instead (a pre-shared token,
no signature: ``alerts/revocation_api.py``); their sightings carry :data:`SELF_MANAGED_GITLAB`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Answer = Literal["feedback", "acknowledge"]
"""``feedback``: 200 with GitHub's array of labels, one per reported token (GitHub, deps.dev).
``acknowledge``: 204, nothing to say (GitLab: any 2xx acknowledges, 400 and above is retried)."""


@dataclass(frozen=True, slots=True)
class Fields:
    """Which member of a reported entry holds each field we read; ``token`` and ``type`` always do.

    ``None``: the platform sends no such member (the field is then empty)."""

    url: str = "url"
    source: str | None = "source"


@dataclass(frozen=True, slots=True)
class Origin:
    name: str
    """Its label: metrics, logs, its sightings (``leak_events.origin``), ``test-alert --origin``."""
    platform: str
    """The platform's name as people are shown it."""
    finder: str
    """Who found it, as the leak mail's first sentence names them."""
    route: str
    key_id_header: str
    """Header names in lower case (headers compare case-insensitively)."""
    signature_header: str
    fields: Fields
    answer: Answer
    switch: str
    """The setting that turns it on."""
    keys_url: str
    """The setting that names its key document."""
    keys_token: str | None = None
    """The setting holding a token sent when fetching its key document, if it takes one."""


GITHUB = Origin(
    name="github",
    platform="GitHub",
    finder="GitHub secret scanning",
    route="/v1/secret-scanning/github",
    key_id_header="github-public-key-identifier",
    signature_header="github-public-key-signature",
    fields=Fields(),
    answer="feedback",
    switch="github_alerts",
    keys_url="github_keys_url",
    keys_token="github_token",
)
DEPS_DEV = Origin(
    name="deps.dev",
    platform="deps.dev",
    finder="deps.dev (Google's Open Source Insights)",
    route="/v1/secret-scanning/deps.dev",
    key_id_header="gosst-public-key-identifier",
    signature_header="gosst-public-key-signature",
    fields=Fields(),
    answer="feedback",
    switch="depsdev_alerts",
    keys_url="depsdev_keys_url",
)
GITLAB = Origin(
    name="gitlab",
    platform="GitLab",
    finder="GitLab secret detection",
    route="/v1/secret-scanning/gitlab",
    key_id_header="gitlab-public-key-identifier",
    signature_header="gitlab-public-key-signature",
    fields=Fields(source=None),
    answer="acknowledge",
    switch="gitlab_alerts",
    keys_url="gitlab_keys_url",
)
ORIGINS: tuple[Origin, ...] = (GITHUB, DEPS_DEV, GITLAB)
BY_NAME = {origin.name: origin for origin in ORIGINS}

SELF_MANAGED_GITLAB = "gitlab-self-managed"
"""The origin of reports made through the Token Revocation API by self-managed GitLab instances."""
