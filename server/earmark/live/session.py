"""One live session, whatever carries it: the runner (or one per channel), the outbox, the
closing summary and Metadata, and how it ends (finish, drain, error, abandon).

An ingest is a thin adapter: it opens a ``Transport`` (encoded messages out, ``close(code,
reason)``), asks the factory for the session's parts (``ingest/admission.open_session``),
and feeds the session what its client sends (``feed``, ``finalize``, ``feed_silence``) from
its own input loop, which it hands to ``run``. Whatever way the session ends, ``run`` cancels
the queued model work and sets ``finished``; the results already decided are sent first.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from earmark.core.events import Event, Transcript
from earmark.core.story import StorySoFar
from earmark.core.summary import headline_index, summary_of
from earmark.errors import EarmarkError
from earmark.live.channels import ChannelGroup
from earmark.live.outbox import Outbox
from earmark.live.runner import LiveRunner

logger = logging.getLogger(__name__)
CLOSE_WAIT_S = 120.0  # upper bound for the last finals after the input ends
DRAIN_WAIT_S = 10.0  # for the outbox to empty before the transport closes


class TransportGone(Exception):
    """The client went away: nobody is left to send anything to."""


class Transport(Protocol):
    async def opened(self) -> None:
        """Returns once messages can be sent (a WebRTC data channel opens after the offer)."""

    async def send(self, message: bytes) -> None:
        """Writes one message; raises TransportGone when the client is gone."""

    async def flushed(self) -> None:
        """Returns once what ``send`` handed over has left (a data channel buffers it)."""

    async def close(self, code: int, reason: str) -> None:
        """Ends the client's connection (``code`` as on a WebSocket)."""

    @property
    def open(self) -> bool:
        """Messages can still be sent."""


class Encoder(Protocol):
    """A dialect's writer of one channel's events (``dialects/deepgram.DeepgramEncoder``).
    None: nothing to send (a job's encoder passes events on and has no closing messages)."""

    channel: int

    def encode(self, event: Event) -> Any: ...

    def metadata(self, *, duration_samples: int, sha256: str, channels: int) -> Any: ...

    def summary(self, summary: str, short: str) -> Any: ...

    def error(self, err: EarmarkError) -> Any: ...


RunnerFactory = Callable[[int | None, Callable[[Event], None]], LiveRunner]


@dataclass(frozen=True)
class SessionParts:
    """What a session is made of, joined from the client's spec and the server's policy."""

    encoders: Sequence[Encoder]  # one per channel (a multichannel session has several)
    build_runner: RunnerFactory  # (channel, or None for a mixed stream; emit) -> runner
    metadata_channels: int
    outbox_max_messages: int
    summarize: bool = False
    embed: Callable[[list[str]], Future[np.ndarray]] | None = None  # for the summary
    # A job's session: messages go to this at once, in order, instead of through the outbox
    # (no socket to wait on, and its caller reads progress right after each chunk).
    deliver: Callable[[Any], None] | None = None
    close_wait_s: float = CLOSE_WAIT_S  # for the last finals once the input has ended


class LiveSession:
    def __init__(self, transport: Transport, parts: SessionParts, *, request_id: str,
                 owner: str | None = None, pulls_url: bool = False) -> None:
        self.transport = transport
        self.owner = owner  # the API key's owner (per-key session limits)
        self.pulls_url = pulls_url
        self.request_id = request_id
        self.log = logging.LoggerAdapter(logger, {"session": request_id})
        self.outbox = Outbox(parts.outbox_max_messages)
        self.story = StorySoFar() if parts.summarize else None
        self._parts = parts
        self.encoder = parts.encoders[0]
        loop = asyncio.get_running_loop()
        # Set at server shutdown: the input ends, every final goes out, then close 1012.
        self.draining: asyncio.Future[None] = loop.create_future()
        self.finished = asyncio.Event()
        self.sender: asyncio.Task[None] | None = None
        self.error: EarmarkError | None = None  # what ended the session, if not its input
        self.duration_samples = 0  # of the audio received, once finished
        self.streams = len(parts.encoders)  # each channel is a stream for capacity
        self.runner: LiveRunner | ChannelGroup
        if self.streams == 1:
            self.runner = parts.build_runner(None, self._emitter(self.encoder))
        else:
            self.runner = ChannelGroup([parts.build_runner(i, self._emitter(e))
                                        for i, e in enumerate(parts.encoders)])

    # --- what the registry, the metrics and key revocation read ---
    @property
    def lag_s(self) -> float:
        return self.runner.lag_samples / 16000

    @property
    def partials_shed(self) -> bool:
        return self.runner.partials_shed

    def drain(self) -> None:
        if not self.draining.done():
            self.draining.set_result(None)

    def revoke(self, err: EarmarkError) -> None:
        """The key was revoked: the results so far, then ``err`` and its close code."""
        self.fail(err)

    def fail(self, err: BaseException) -> None:
        if not self.runner.failed.done():
            self.runner.failed.set_exception(err)

    @property
    def stops(self) -> set[asyncio.Future[None]]:
        """What ends the input early: the sender failed, the stream failed, a drain."""
        assert self.sender is not None, "stops is read inside run()"
        return {self.sender, self.runner.failed, self.draining}

    # --- input ---
    async def feed(self, data: bytes) -> tuple[int, float]:
        """Audio as the client sent it; (samples at 16 kHz, peak). Raises BadAudio."""
        return await self.runner.feed(data)

    async def feed_silence(self, samples: int) -> None:
        await self.runner.feed_silence(samples)

    def finalize(self) -> None:
        self.runner.finalize()

    def put(self, event: Event) -> None:
        """An event from outside the runner (a pulled source's status)."""
        self._emitter(self.encoder)(event)

    def _emitter(self, encoder: Encoder) -> Callable[[Event], None]:
        def emit(event: Event) -> None:
            if self.story is not None and isinstance(event, Transcript) and event.is_final:
                self.story.add(event.words)  # as sent: redacted words stay redacted
            self._put(encoder.encode(event), channel=encoder.channel,
                      interim=isinstance(event, Transcript) and not event.is_final)

        return emit

    # --- the session's life ---
    async def run(self, consume: Callable[[], Awaitable[None]]) -> None:
        """Runs ``consume`` (the ingest's input loop, which returns when the input has
        ended), then sends the last finals, the summary and Metadata, and closes."""
        self.sender = asyncio.create_task(self._send_loop())
        try:
            await consume()
            await self._finish()
        except TransportGone:
            self.log.info("client went away")
        except EarmarkError as err:
            self.log.info("closing with %s: %s", err.code, err.message)
            self.error = err
            await self._flush_then_error(err)
        except asyncio.CancelledError:
            raise
        except Exception:
            self.log.exception("live session failed")
            self.error = EarmarkError("internal server error")
            await self._flush_then_error(self.error)
        finally:
            self.sender.cancel()
            self.runner.abandon()
            self.finished.set()

    async def _send_loop(self) -> None:
        await self.transport.opened()
        while True:
            message = await self.outbox.get()
            await self.transport.send(message)
            self.outbox.sent()

    async def _finish(self) -> None:
        assert self.sender is not None
        self.duration_samples = await self.runner.finish(self.sender, self._parts.close_wait_s)
        if self.story is not None:
            self._put(await self._summary())
        self._put(self.encoder.metadata(duration_samples=self.duration_samples,
                                        sha256=self.runner.sha256.hexdigest(),
                                        channels=self._parts.metadata_channels))
        await self._drain()
        if self.draining.done():
            await self.transport.close(1012, "server shutting down; results so far were sent")
        else:
            await self.transport.close(1000, "")

    def _put(self, message: Any, *, channel: int = 0, interim: bool = False) -> None:
        """One encoded message to the client: through the outbox (an interim replaces a
        pending one), or straight to a job's ``deliver``; None is nothing to send."""
        if message is None:
            return
        if self._parts.deliver is not None:
            self._parts.deliver(message)
        else:
            self.outbox.put(message, channel=channel, interim=interim)

    async def _summary(self) -> Any:
        """An extractive summary of the whole stream and its most representative sentence."""
        assert self.story is not None
        texts = [m.text for m in self.story.sentences()]
        if not texts or self._parts.embed is None:
            return self.encoder.summary("", "")
        vectors = await asyncio.wrap_future(self._parts.embed(texts))
        return self.encoder.summary(summary_of(texts, vectors),
                                    texts[headline_index(texts, vectors)])

    async def _drain(self) -> None:
        """Waits for the outbox to empty and the transport to pass it on (bounded)."""
        assert self.sender is not None
        if self.sender.done():
            self.sender.result()  # raises what stopped it
            return
        if not self.transport.open:
            return  # nobody to tell (a data channel that never opened)
        drained = asyncio.ensure_future(self.outbox.drained())
        done, _ = await asyncio.wait({drained, self.sender}, timeout=DRAIN_WAIT_S,
                                     return_when=asyncio.FIRST_COMPLETED)
        drained.cancel()
        if self.sender in done:
            self.sender.result()
        await self.transport.flushed()

    async def _flush_then_error(self, err: EarmarkError) -> None:
        """Results already decided are still the client's: they go before the Error."""
        try:
            await self._drain()
            message = self.encoder.error(err)
            if self.transport.open and message is not None:
                await self.transport.send(message)
                await self.transport.flushed()
            await self.transport.close(err.close_code, err.message[:120])
        except Exception:  # noqa: BLE001 - the client may already be gone
            pass
