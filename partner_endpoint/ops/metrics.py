"""Prometheus metrics: one registry per application instance, summed over worker processes.

With ``serve --workers N`` (N > 1) each worker keeps its values in a directory that ``serve`` makes
and names in ``PROMETHEUS_MULTIPROC_DIR`` before the workers start (prometheus_client's
multiprocess mode, chosen when it is first imported), and a scrape answered by any worker reads
every worker's file: one scrape shows the host's totals. Without the directory (one worker, the
tests) the registry holds the values itself, with no process-global state.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own variable; ``serve`` sets it for its workers."""


@dataclass(frozen=True, slots=True)
class Metric:
    """One metric as data: its name, help and labels; a gauge also says how workers' values combine."""

    name: str
    help: str
    labels: tuple[str, ...] = ()
    gauge: Literal["mostrecent", "sum", "max", "min", "livesum", "livemax", "livemin"] | None = None
    """None: a counter. For a gauge, ``mostrecent`` for a value measured at scrape time,
    ``sum``/``max``/``min`` for per-process values; a ``live*`` mode drops a worker's value when
    it exits cleanly (:meth:`Metrics.close`), but not when it is killed."""

    def build(self, registry: CollectorRegistry) -> Counter | Gauge:
        if self.gauge is None:
            return Counter(self.name, self.help, self.labels, registry=registry)
        return Gauge(self.name, self.help, self.labels, registry=registry, multiprocess_mode=self.gauge)


METRICS: dict[str, Metric] = {
    # --- leak alerts
    "alerts": Metric("soundpiece_alerts", "Signed alert batches received from GitHub"),
    "tokens": Metric("soundpiece_alert_tokens", "Reported tokens by feedback label", ("label",)),
    "rejected_entries": Metric(
        "soundpiece_alert_entries_rejected",
        "Entries of signed alert batches that could not be read (the rest of each batch was processed)",
    ),
    "alert_requests_limited": Metric(
        "soundpiece_alert_requests_limited",
        "Alert requests refused (429) because their client failed too often",
    ),
    "signature_failures": Metric(
        "soundpiece_signature_failures", "Rejected alert requests by reason", ("reason",)
    ),
    "key_fetches": Metric(
        "soundpiece_github_key_fetches", "Fetches of GitHub's public keys by result", ("result",)
    ),
    "key_cache_hits": Metric(
        "soundpiece_github_key_cache_hits", "Signature checks served from the key cache"
    ),
    # --- leak reports by origin (github, deps.dev, gitlab, gitlab-self-managed); GitHub's are also above
    "leak_reports": Metric("soundpiece_leak_reports", "Verified leak report batches by origin", ("origin",)),
    "leak_report_tokens": Metric(
        "soundpiece_leak_report_tokens", "Reported tokens by origin and feedback label", ("origin", "label")
    ),
    "leak_report_entries_rejected": Metric(
        "soundpiece_leak_report_entries_rejected",
        "Entries of verified leak reports that could not be read or were of another type, by origin",
        ("origin",),
    ),
    "leak_report_requests_limited": Metric(
        "soundpiece_leak_report_requests_limited",
        "Leak report requests refused (429) by origin: their client failed too often, or an instance "
        "made too many revocation API requests",
        ("origin",),
    ),
    "leak_report_refusals": Metric(
        "soundpiece_leak_report_refusals",
        "Leak report requests refused by origin and reason (signature, key document, revocation token)",
        ("origin", "reason"),
    ),
    "key_document_fetches": Metric(
        "soundpiece_key_document_fetches",
        "Fetches of an origin's key document by result",
        ("origin", "result"),
    ),
    "key_document_cache_hits": Metric(
        "soundpiece_key_document_cache_hits",
        "Signature checks served from an origin's key cache",
        ("origin",),
    ),
    # --- mail
    "mail_sent": Metric("soundpiece_mail_sent", "Leak notifications delivered"),
    "mail_failed": Metric("soundpiece_mail_failed", "Failed delivery attempts"),
    # read from the database at each scrape, by whichever worker
    "outbox_depth": Metric("soundpiece_outbox_depth", "Mails waiting in the outbox", gauge="mostrecent"),
    # --- API authentication
    "api_auth_failures": Metric(
        "soundpiece_api_auth_failures",
        "Refused API authentications by reason (malformed, unknown, revoked, allowlist)",
        ("reason",),
    ),
    "api_rate_limited": Metric(
        "soundpiece_api_auth_rate_limited",
        "API requests answered 429: their client failed authentication too often",
    ),
    "api_key_lookups": Metric(
        "soundpiece_api_key_lookups",
        "Database reads for API keys not in the authentication cache, by result",
        ("result",),
    ),
    "traffic_overflow": Metric(
        "soundpiece_traffic_overflow",
        "Requests counted as address or key 'other': more (key, address, minute) pairs than a process keeps",
    ),
    "traffic_writes": Metric(
        "soundpiece_traffic_writes", "Background writes of traffic counts by result", ("result",)
    ),
    "key_change_polls": Metric(
        "soundpiece_key_change_polls",
        "Reads of the key change log by result (errors: authentication falls back to the database)",
        ("result",),
    ),
    # --- the dashboard: results only, never an address or a key (keys are named by id in logs alone)
    "sign_in_requests": Metric(
        "soundpiece_dashboard_sign_in_requests", "Sign-in link requests by result", ("result",)
    ),
    "sign_ins": Metric("soundpiece_dashboard_sign_ins", "Sign-in link uses by result", ("result",)),
    "csrf_refusals": Metric(
        "soundpiece_dashboard_csrf_refusals", "Dashboard forms refused for their CSRF token"
    ),
    "key_changes": Metric("soundpiece_dashboard_key_changes", "Keys changed in the dashboard", ("change",)),
}
"""Every metric of the service, by the attribute :class:`Metrics` gives it. To add one, add a row here
and its annotation on :class:`Metrics` (a test keeps the two in step)."""


class Metrics:
    """Every metric of :data:`METRICS`, registered in a registry of this instance's own."""

    alerts: Counter
    tokens: Counter
    rejected_entries: Counter
    alert_requests_limited: Counter
    signature_failures: Counter
    key_fetches: Counter
    key_cache_hits: Counter
    leak_reports: Counter
    leak_report_tokens: Counter
    leak_report_entries_rejected: Counter
    leak_report_requests_limited: Counter
    leak_report_refusals: Counter
    key_document_fetches: Counter
    key_document_cache_hits: Counter
    mail_sent: Counter
    mail_failed: Counter
    outbox_depth: Gauge
    api_auth_failures: Counter
    api_rate_limited: Counter
    api_key_lookups: Counter
    traffic_overflow: Counter
    traffic_writes: Counter
    key_change_polls: Counter
    sign_in_requests: Counter
    sign_ins: Counter
    csrf_refusals: Counter
    key_changes: Counter

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        if multiprocess_dir is not None and values.ValueClass is values.MutexValue:
            raise RuntimeError(f"{MULTIPROCESS_DIR} must be set before prometheus_client is first imported")
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        for attribute, metric in METRICS.items():
            setattr(self, attribute, metric.build(self.registry))

    @classmethod
    def from_env(cls) -> Metrics:
        """Shared with the other workers when ``serve`` started several (see the module docstring)."""
        return cls(os.environ.get(MULTIPROCESS_DIR) or None)

    def render(self) -> bytes:
        if self.multiprocess_dir is None:
            return generate_latest(self.registry)
        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=self.multiprocess_dir)
        return generate_latest(registry)

    def close(self) -> None:
        """At a worker's clean exit: its ``live*`` gauges leave the totals (counters stay)."""
        if self.multiprocess_dir is not None:
            mark_process_dead(os.getpid(), self.multiprocess_dir)
