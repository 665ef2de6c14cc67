"""One origin's view of the metrics: its labelled counters, and for GitHub also the ones it had alone.

Every origin counts in the ``soundpiece_leak_report_*`` and ``soundpiece_key_document_*`` families
under its ``origin`` label. GitHub's reports are also counted where they were before there were
other origins (``soundpiece_alerts_total``, ``soundpiece_signature_failures_total{reason}``, ...),
so dashboards and alerts in service keep their numbers.
"""

from __future__ import annotations

from prometheus_client import Counter

from partner_endpoint.domain.origins import GITHUB
from partner_endpoint.ops.metrics import Metrics


class OriginMetrics:
    def __init__(self, metrics: Metrics, origin: str) -> None:
        self.origin = origin
        self._metrics = metrics
        self._github = origin == GITHUB.name

    def batch(self) -> None:
        """A verified (or authenticated) batch was received."""
        self._count(self._metrics.leak_reports, self._metrics.alerts)

    def tokens(self, label: str, amount: int) -> None:
        self._count(self._metrics.leak_report_tokens, self._metrics.tokens, amount, label=label)

    def rejected_entries(self, amount: int) -> None:
        self._count(self._metrics.leak_report_entries_rejected, self._metrics.rejected_entries, amount)

    def limited(self) -> None:
        """A request refused with 429."""
        self._count(self._metrics.leak_report_requests_limited, self._metrics.alert_requests_limited)

    def refused(self, reason: str) -> None:
        """A request refused for its signature, its origin's key document, or its token."""
        self._count(self._metrics.leak_report_refusals, self._metrics.signature_failures, reason=reason)

    def key_fetch(self, result: str) -> None:
        self._count(self._metrics.key_document_fetches, self._metrics.key_fetches, result=result)

    def key_cache_hit(self) -> None:
        self._count(self._metrics.key_document_cache_hits, self._metrics.key_cache_hits)

    def _count(self, counter: Counter, githubs: Counter, amount: float = 1, **labels: str) -> None:
        counter.labels(origin=self.origin, **labels).inc(amount)
        if self._github:
            (githubs.labels(**labels) if labels else githubs).inc(amount)
