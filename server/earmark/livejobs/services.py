"""What the job services (stream jobs, tagging sessions) are given: the live services, and
the store and outbox their results go to."""

from __future__ import annotations

from dataclasses import dataclass

from earmark.ingest.services import LiveServices
from earmark.outbound.webhooks import WebhookDispatcher
from earmark.store.live_jobs import LiveJobStore


@dataclass(kw_only=True, eq=False)
class JobServices(LiveServices):
    live_jobs: LiveJobStore  # the rows of running tasks and sessions, for resuming them
    webhooks: WebhookDispatcher  # the outbox's sender: woken when a callback is queued
    webhook_master: bytes  # what each key's webhook signing secret derives from
