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

    def render(self) -> bytes:
        return generate_latest(self.registry)
