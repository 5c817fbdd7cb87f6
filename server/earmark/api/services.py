"""Everything the app runs on, built once in the lifespan (``api/app.py``) and read by the
routes through ``services(request)``: typed, where ``app.state`` is not.

Each layer below reads only the part it declares (``ingest/services.LiveServices``,
``livejobs/services.JobServices``); this adds what only the HTTP routes use.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from fastapi import Request
from sqlalchemy.engine import Engine as Database

from earmark.filejobs.runner import JobRunner
from earmark.filejobs.summaries import ConversationSummaries
from earmark.ingest.services import live_services
from earmark.livejobs.services import JobServices
from earmark.livejobs.stream_jobs import StreamJobs
from earmark.livejobs.tag_sessions import TaggingSessions
from earmark.store.jobs import JobStore
from earmark.store.webhooks import Outbox

if TYPE_CHECKING:  # (the cluster routes import this module)
    from earmark.api.cluster_routes import Heartbeat


@dataclass(kw_only=True, eq=False)
class AppServices(JobServices):
    db: Database
    jobs: JobStore  # file jobs (seed 003, /v1/listen pre-recorded)
    outbox: Outbox  # webhook deliveries, persistent
    summaries: ConversationSummaries
    job_runner: JobRunner
    # Built from the services themselves, right after them (``api/app.py``).
    tag_sessions: TaggingSessions = field(init=False)
    stream_jobs: StreamJobs = field(init=False)
    heartbeat: Heartbeat = field(init=False)


def services(request: Request) -> AppServices:
    """The app's services. Raises NotReady before the lifespan has built them."""
    found = live_services(request.app)
    assert isinstance(found, AppServices), type(found)
    return found


def ready_services(request: Request) -> AppServices:
    """The app's services for new work. Raises NotReady while the models load or the
    server drains."""
    found = services(request)
    refusal = found.not_ready()
    if refusal is not None:
        raise refusal
    return found
