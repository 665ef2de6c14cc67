"""Who reported a leak, and where it was found, as owners are told (mail, dashboard, ``leaks list``). Pure.

deps.dev scans the packages of public registries; when a report's url is a registry's (or deps.dev's
own page of a package), the owner is told which registry: "found in a package on PyPI". deps.dev
does not document its urls, so only hosts known to be a registry's count, matched whole (a url of
``pypi.org.example.com`` names no registry), and anything else is "a package in a public registry".
"""

from __future__ import annotations

from urllib.parse import urlsplit

from partner_endpoint.domain.origins import BY_NAME, DEPS_DEV, SELF_MANAGED_GITLAB

_SELF_MANAGED = ("GitLab (self-managed)", "The secret detection of a self-managed GitLab instance")
_UNKNOWN = ("a leak report", "A leak report")
"""An origin this version does not know (a row written by a newer one)."""

REGISTRY_HOSTS = {
    "pypi.org": "PyPI",
    "files.pythonhosted.org": "PyPI",
    "registry.npmjs.org": "npm",
    "www.npmjs.com": "npm",
    "crates.io": "crates.io",
    "static.crates.io": "crates.io",
    "repo1.maven.org": "Maven Central",
    "repo.maven.apache.org": "Maven Central",
    "central.sonatype.com": "Maven Central",
    "proxy.golang.org": "the Go module mirror",
    "pkg.go.dev": "the Go module mirror",
    "www.nuget.org": "NuGet",
    "api.nuget.org": "NuGet",
    "rubygems.org": "RubyGems",
}
DEPS_DEV_SYSTEMS = {
    "pypi": "PyPI",
    "npm": "npm",
    "cargo": "crates.io",
    "maven": "Maven Central",
    "go": "the Go module mirror",
    "nuget": "NuGet",
    "rubygems": "RubyGems",
}
"""The first path segment of deps.dev's own package pages (``https://deps.dev/pypi/<name>/<version>``)."""


def platform(origin: str) -> str:
    """``GitHub``, ``deps.dev``, ``GitLab``: the platform that reported it."""
    if origin == SELF_MANAGED_GITLAB:
        return _SELF_MANAGED[0]
    known = BY_NAME.get(origin)
    return known.platform if known else _UNKNOWN[0]


def finder(origin: str) -> str:
    """``GitHub secret scanning``: who found it, as a sentence's subject."""
    if origin == SELF_MANAGED_GITLAB:
        return _SELF_MANAGED[1]
    known = BY_NAME.get(origin)
    return known.finder if known else _UNKNOWN[1]


def registry(url: str) -> str | None:
    """The public registry a url points into (``PyPI``), if it is one this module knows."""
    try:
        parts = urlsplit(url.strip())
        host = (parts.hostname or "").lower()
    except ValueError:
        return None
    if parts.scheme.lower() not in ("http", "https"):
        return None
    if host == "deps.dev":
        return DEPS_DEV_SYSTEMS.get(parts.path.split("/")[1].lower() if parts.path.count("/") else "")
    return REGISTRY_HOSTS.get(host)


def found_where(origin: str, url: str) -> str:
    """``in a package on PyPI`` (deps.dev, a url of a known registry), ``in public`` otherwise."""
    if origin != DEPS_DEV.name:
        return "in public"
    name = registry(url)
    return f"in a package on {name}" if name else "in a package in a public registry"


def reported_by(origin: str, url: str) -> str:
    """A cell of the dashboard's and ``leaks list``'s: ``GitLab``, ``deps.dev, in a package on PyPI``."""
    if origin == DEPS_DEV.name:
        return f"{platform(origin)}, {found_where(origin, url)}"
    return platform(origin)
