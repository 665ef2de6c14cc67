"""A verified batch, whatever its origin, handed to the leak service: its sightings, its labels, its logs.

What a report does (record, revoke or flag, mail) is :class:`~partner_endpoint.services.leaks.LeakService`'s,
the same for every origin: so a credential reported by two platforms is revoked once and mailed once.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

from starlette.concurrency import run_in_threadpool

from partner_endpoint.alerts.batch import Alert, AlertBatch, feedback
from partner_endpoint.ops.origin_metrics import OriginMetrics
from partner_endpoint.services.leaks import LeakService
from partner_endpoint.store.leaks import NOTHING, Sighting

log = logging.getLogger(__name__)


def sightings(alerts: Sequence[Alert]) -> list[Sighting]:
    """The reported credentials as the store records them: hashes and where, never the tokens."""
    return [
        Sighting(a.token_hash, a.type, a.url, a.source, a.location_hash, a.origin)
        for a in alerts
        if a.is_credential
    ]


async def respond(batch: AlertBatch, leaks: LeakService, metrics: OriginMetrics) -> list[dict[str, str]]:
    """Apply the leak policy to a batch; GitHub's feedback array for it (one entry per reported token)."""
    if batch.rejected:
        metrics.rejected_entries(len(batch.rejected))
        log.warning(
            "alert entries rejected; the rest of the batch is processed",
            extra={
                "fields": {
                    "origin": metrics.origin,
                    "rejected": [(r.index, r.reason) for r in batch.rejected[:20]],
                }
            },
        )
    reported = sightings(batch.alerts)
    outcome = await run_in_threadpool(leaks.respond, reported) if reported else NOTHING
    answer = feedback(batch.alerts, outcome.issued)
    true_positives = sum(entry["label"] == "true_positive" for entry in answer)
    metrics.tokens("true_positive", true_positives)
    metrics.tokens("false_positive", len(answer) - true_positives)
    for token_hash, leaked_key_id, action in outcome.actions:
        log.warning(
            "leaked key reported",
            extra={
                "fields": {
                    "origin": metrics.origin,
                    "token_hash": token_hash,
                    "key_id": leaked_key_id,
                    "action": action,
                }
            },
        )
    log.info(
        "alert batch processed",
        extra={
            "fields": {
                "origin": metrics.origin,
                "tokens": len(batch.alerts),
                "true_positives": len(outcome.actions),
                "mails_queued": len(outcome.leaks),
            }
        },
    )
    return answer
