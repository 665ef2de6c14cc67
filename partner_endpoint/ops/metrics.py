"""Prometheus metrics: one registry per application instance, summed over worker processes.

With ``serve --workers N`` (N > 1) each worker keeps its values in a directory that ``serve`` makes
and names in ``PROMETHEUS_MULTIPROC_DIR`` before the workers start (prometheus_client's
multiprocess mode, chosen when it is first imported), and a scrape answered by any worker reads
every worker's file: one scrape shows the host's totals. Without the directory (one worker, the
tests) the registry holds the values itself, with no process-global state.
"""

from __future__ import annotations

import os

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector, mark_process_dead

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
MULTIPROCESS_DIR = "PROMETHEUS_MULTIPROC_DIR"
"""prometheus_client's own variable; ``serve`` sets it for its workers."""


class Metrics:
    """Every metric of the service.

    To add one, add an attribute with ``registry=r``. A counter needs nothing else. A gauge also names
    how the workers' values combine (``multiprocess_mode``): ``mostrecent`` for a value measured at
    scrape time, ``sum``/``max``/``min`` for per-process values. A ``live*`` mode drops a worker's
    value when it exits cleanly (:meth:`close`), but not when it is killed.
    """

    def __init__(self, multiprocess_dir: str | None = None) -> None:
        if multiprocess_dir is not None and values.ValueClass is values.MutexValue:
            raise RuntimeError(f"{MULTIPROCESS_DIR} must be set before prometheus_client is first imported")
        self.multiprocess_dir = multiprocess_dir
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.alerts = Counter("soundpiece_alerts", "Signed alert batches received from GitHub", registry=r)
        self.tokens = Counter(
            "soundpiece_alert_tokens", "Reported tokens by feedback label", ["label"], registry=r
        )
        self.rejected_entries = Counter(
            "soundpiece_alert_entries_rejected",
            "Entries of signed alert batches that could not be read (the rest of each batch was processed)",
            registry=r,
        )
        self.alert_requests_limited = Counter(
            "soundpiece_alert_requests_limited",
            "Alert requests refused (429) because their client failed too often",
            registry=r,
        )
        self.signature_failures = Counter(
            "soundpiece_signature_failures", "Rejected alert requests by reason", ["reason"], registry=r
        )
        self.key_fetches = Counter(
            "soundpiece_github_key_fetches",
            "Fetches of GitHub's public keys by result",
            ["result"],
            registry=r,
        )
        self.key_cache_hits = Counter(
            "soundpiece_github_key_cache_hits", "Signature checks served from the key cache", registry=r
        )
        self.mail_sent = Counter("soundpiece_mail_sent", "Leak notifications delivered", registry=r)
        self.mail_failed = Counter("soundpiece_mail_failed", "Failed delivery attempts", registry=r)
        self.outbox_depth = Gauge(
            "soundpiece_outbox_depth",
            "Mails waiting in the outbox",
            registry=r,
            multiprocess_mode="mostrecent",  # read from the database at each scrape, by whichever worker
        )
        self.api_auth_failures = Counter(
            "soundpiece_api_auth_failures",
            "Refused API authentications by reason (malformed, unknown, revoked, allowlist)",
            ["reason"],
            registry=r,
        )
        self.api_rate_limited = Counter(
            "soundpiece_api_auth_rate_limited",
            "API requests answered 429: their client failed authentication too often",
            registry=r,
        )
        self.api_key_lookups = Counter(
            "soundpiece_api_key_lookups",
            "Database reads for API keys not in the authentication cache, by result",
            ["result"],
            registry=r,
        )
        self.key_change_polls = Counter(
            "soundpiece_key_change_polls",
            "Reads of the key change log by result (errors: authentication falls back to the database)",
            ["result"],
            registry=r,
        )
        # The dashboard: results only, never an address or a key (keys are named by id in logs alone).
        self.sign_in_requests = Counter(
            "soundpiece_dashboard_sign_in_requests", "Sign-in link requests by result", ["result"], registry=r
        )
        self.sign_ins = Counter(
            "soundpiece_dashboard_sign_ins", "Sign-in link uses by result", ["result"], registry=r
        )
        self.csrf_refusals = Counter(
            "soundpiece_dashboard_csrf_refusals", "Dashboard forms refused for their CSRF token", registry=r
        )
        self.key_changes = Counter(
            "soundpiece_dashboard_key_changes", "Keys changed in the dashboard", ["change"], registry=r
        )

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
