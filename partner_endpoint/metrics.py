"""Prometheus metrics, one registry per application instance (no process-global state)."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class Metrics:
    def __init__(self) -> None:
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
        self.outbox_depth = Gauge("soundpiece_outbox_depth", "Mails waiting in the outbox", registry=r)

    def render(self) -> bytes:
        return generate_latest(self.registry)
