"""WebRTC ingest: ``POST /v1/webrtc/offer``.

The client sends an SDP offer with one audio track and a data channel labelled ``earmark``;
the answer comes back in the response (aiortc gathers every candidate first, so no trickle
ICE is needed). Audio frames (usually Opus at 48 kHz) are resampled by one resampler per track
into the same live pipeline as ``/v1/listen``; results go back on the data channel as the same
JSON messages, and the channel takes the same control messages (KeepAlive, Finalize,
CloseStream).

Peers belong to the app's ``WebRtcPeers``: each peer (``ingest/webrtc_peer.PeerSession``) has
one task, and whatever way it ends (track ended, CloseStream, ICE failure, idle, an error,
shutdown) the task closes the peer connection and leaves the registry.
"""

from __future__ import annotations

import asyncio
import logging
import uuid
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from earmark.auth import key_from_request
from earmark.config import Settings
from earmark.dialects.deepgram import (
    LiveOptions,
    parse_live_options,
)
from earmark.errors import (
    EarmarkError,
    InvalidParameter,
    Overloaded,
    retry_headers,
)
from earmark.ingest.admission import (
    admit_caller,
    check_models,
    resolve_tags,
)
from earmark.ingest.services import LiveServices, live_services
from earmark.ingest.webrtc_peer import CHANNEL_LABEL, PeerSession, codec_delay_samples

logger = logging.getLogger(__name__)
router = APIRouter()
MAX_SDP_BYTES = 64 * 1024


def _ice_servers(settings: Settings) -> list[Any]:
    from aiortc import RTCIceServer

    servers = []
    for url in (u.strip() for u in settings.webrtc_ice_servers.split(",")):
        if not url:
            continue
        turn = url.startswith(("turn:", "turns:"))
        servers.append(RTCIceServer(
            urls=url,
            username=(settings.webrtc_turn_username or None) if turn else None,
            credential=(settings.webrtc_turn_password or None) if turn else None,
        ))
    return servers


class WebRtcPeers:
    """The app's peer connections: a bounded registry, one task per peer."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.peers: set[PeerSession] = set()
        self.tasks: set[asyncio.Task[None]] = set()

    def start(self, peer: PeerSession) -> None:
        self.peers.add(peer)
        task = asyncio.create_task(peer.run(), name=f"webrtc-{peer.request_id}")
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def close_all(self) -> None:
        """Lifespan shutdown: whatever is still running is cancelled and closed."""
        for task in list(self.tasks):
            task.cancel()
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)


def _error(err: EarmarkError, request_id: str) -> JSONResponse:
    return JSONResponse({**err.to_dict(), "request_id": request_id},
                        status_code=err.http_status, headers=retry_headers(err))


def _parse_offer(body: Any) -> str:
    if not isinstance(body, dict) or body.get("type") != "offer":
        raise InvalidParameter('the body must be {"type": "offer", "sdp": "..."}', param="type")
    sdp = body.get("sdp")
    if not isinstance(sdp, str) or not sdp.startswith("v=0"):
        raise InvalidParameter("sdp must be an SDP offer (starting with v=0)", param="sdp")
    if len(sdp) > MAX_SDP_BYTES:
        raise InvalidParameter(f"sdp is over {MAX_SDP_BYTES} bytes", param="sdp")
    media = [line.split()[0][2:] for line in sdp.splitlines() if line.startswith("m=")]
    if media.count("audio") != 1:
        raise InvalidParameter("the offer must carry exactly one audio track", param="sdp")
    if "video" in media:
        raise InvalidParameter("video is not accepted; offer audio only", param="sdp")
    if "application" not in media:
        raise InvalidParameter(
            f"the offer has no data channel; open one labelled {CHANNEL_LABEL!r} before "
            "creating the offer, results arrive on it", param="sdp")
    return sdp


@router.post("/v1/webrtc/offer")
async def offer(request: Request) -> JSONResponse:
    services = live_services(request.app)
    peers = services.webrtc
    request_id = str(uuid.uuid4())
    try:
        owner, options, sdp = await _admit(request, services)
        tags = await resolve_tags(services, owner, options)
        refusal = services.not_ready() or services.sessions.over_capacity()
        if refusal is None and len(peers.peers) >= peers.limit:
            refusal = Overloaded(f"at the limit of {peers.limit} WebRTC peers; retry later")
        if refusal is not None:
            raise refusal
    except EarmarkError as err:
        return _error(err, request_id)

    from aiortc import RTCConfiguration, RTCPeerConnection

    pc = RTCPeerConnection(RTCConfiguration(iceServers=_ice_servers(services.settings)))
    peer = PeerSession(pc, services, options, request_id, tags, owner=owner)
    peers.peers.add(peer)
    services.sessions.add(peer.session)
    try:
        await _answer(pc, sdp, request_id)
        if peer.track is None:
            raise InvalidParameter("the offer's audio track is not sending", param="sdp")
    except EarmarkError as err:
        peers.peers.discard(peer)
        services.sessions.discard(peer.session)
        await pc.close()
        return _error(err, request_id)
    peer.codec_delay_samples = codec_delay_samples(pc.localDescription.sdp)
    peers.start(peer)
    return JSONResponse({"type": "answer", "sdp": pc.localDescription.sdp,
                         "request_id": request_id})


async def _admit(request: Request, services: LiveServices) -> tuple[str, LiveOptions, str]:
    """Who asks, with which options, and the SDP offer. Raises EarmarkError."""
    key, _ = key_from_request(request.headers, request.query_params, [])
    principal = admit_caller(services, key)
    options = parse_live_options(request.query_params.multi_items(),
                                 multilingual=services.engine.multilingual,
                                 defaults=services.settings.listen_default_pairs)
    if options.url is not None:
        raise InvalidParameter("url is for /v1/listen; a WebRTC session sends its own audio",
                               param="url")
    if options.multichannel:
        raise InvalidParameter("a WebRTC track is one audio stream; multichannel is for "
                               "/v1/listen", param="multichannel")
    check_models(services.engine, options)
    try:
        body = await request.json()
    except ValueError:
        raise InvalidParameter("the body must be JSON", param="sdp") from None
    return principal.owner, options, _parse_offer(body)


async def _answer(pc: Any, sdp: str, request_id: str) -> None:
    from aiortc import RTCSessionDescription

    try:
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
    except Exception as exc:  # noqa: BLE001 - aiortc raises plain exceptions for bad SDP
        # aiortc's own text names its internals; the client gets what it can act on.
        logger.info("WebRTC offer %s refused: %s: %s", request_id, type(exc).__name__, exc)
        raise InvalidParameter("the offer could not be used: it is not a valid SDP offer "
                               "with an audio track (RFC 8866, RFC 8829)", param="sdp") from None
