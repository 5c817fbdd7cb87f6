"""What a live ingest is given: the app's services it reads, typed and passed explicitly.

The app builds one services object in its lifespan (``api/services.AppServices``, a subclass
of this) and every layer reads only the part it declares: ingests this one, job services
``livejobs/services.JobServices``. Nothing reaches into an untyped ``app.state``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from starlette.applications import Starlette

from earmark.auth import Access
from earmark.config import Settings
from earmark.errors import NotReady
from earmark.inference.engine import Engine
from earmark.ingest.egress_proxy import EgressProxy
from earmark.live.registry import SessionRegistry
from earmark.metrics import AppMetrics
from earmark.store.tag_collections import TagCollections

if TYPE_CHECKING:  # (the WebRTC route module imports this one)
    from earmark.ingest.webrtc import WebRtcPeers


@dataclass(kw_only=True, eq=False)
class LiveServices:
    settings: Settings
    engine: Engine  # the models, their decode policy and the load gauge
    access: Access  # keys, tokens, request rates
    sessions: SessionRegistry  # capacity, URL pulls, per-key limits, drain
    metrics: AppMetrics
    webrtc: WebRtcPeers
    egress: EgressProxy  # the proxy every URL pull goes through
    tag_collections: TagCollections

    def not_ready(self) -> NotReady | None:
        """Refusal for new work while the models load or the server drains."""
        if not self.engine.ready or self.sessions.draining:
            return NotReady("the server is starting or shutting down")
        return None


def live_services(app: Starlette) -> LiveServices:
    """The services of ``app`` (a Starlette app), as ingests see them. Raises NotReady
    before the lifespan has built them."""
    services = getattr(app.state, "services", None)
    if not isinstance(services, LiveServices):
        raise NotReady("the server is starting or shutting down")
    return services
