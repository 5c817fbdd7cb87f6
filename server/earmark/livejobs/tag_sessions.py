"""Tagging sessions on a live URL (seeds 000/001): listen for ``--tag-session-s`` (60) seconds
of stream audio, compute tags over what was said, send one webhook. Sessions are rows in the
database: one still listening when the server stops is started again (a fresh listen) after
the restart. The routes are in ``api/tag_sessions.py``.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field

from earmark.core import SAMPLE_RATE
from earmark.core.events import Event, Tags, Transcript
from earmark.dialects.chatsight import tag_fields, webhook_body, webhook_payload
from earmark.errors import InvalidParameter, NotFound
from earmark.inference.tagger import Tag
from earmark.ingest.pull_session import PullSession
from earmark.livejobs.services import JobServices
from earmark.outbound.webhooks import owner_secret
from earmark.store.live_jobs import LiveJobStore, TagSession

logger = logging.getLogger(__name__)


@dataclass
class _Run:
    """What one listening run has heard so far."""

    session: TagSession
    finals: list[Transcript] = field(default_factory=list)
    tags: Tags | None = None

    def on_event(self, event: Event) -> None:
        if isinstance(event, Transcript) and event.is_final and event.words:
            self.finals.append(event)
        elif isinstance(event, Tags):
            self.tags = event  # the last Tags cover the whole (60 s) window


class TaggingSessions:
    """Runs the sessions of this process; the database holds their state."""

    def __init__(self, services: JobServices) -> None:
        self.services = services
        self._running: dict[tuple[str, str], tuple[str, PullSession, asyncio.Task[None]]] = {}

    @property
    def store(self) -> LiveJobStore:
        return self.services.live_jobs

    async def tags_for(self, owner: str, collection: str | None) -> tuple[Tag, ...]:
        """The default catalogue, or the key's own collection. Raises InvalidParameter."""
        if collection is None:
            return self.services.engine.catalogue
        try:
            found = await asyncio.to_thread(self.services.tag_collections.get, owner,
                                            collection)
        except NotFound:
            raise InvalidParameter(f"no tag collection named {collection!r} for this API key",
                                   param="tagCollection") from None
        return found.tags

    async def resume(self) -> None:
        for session in await asyncio.to_thread(self.store.listening_tag_sessions):
            try:
                tags = await self.tags_for(session.owner, session.request.get("tagCollection"))
            except InvalidParameter as err:  # deleted while the server was down
                await asyncio.to_thread(self.store.finish_tag_session, session, state="failed",
                                        reason=err.message, result=None, webhook_body=None)
                continue
            logger.info("tagging session %s: listening again after a restart", session.convo_id)
            self.start(session, tags)

    def start(self, session: TagSession, tags: tuple[Tag, ...]) -> None:
        key = (session.owner, session.convo_id)
        earlier = self._running.pop(key, None)
        if earlier is not None:
            earlier[1].stop("replaced by a new session with the same convoId")
        run = _Run(session)
        headers = {}
        auth = session.request.get("authorization")
        if auth:
            headers["Authorization"] = auth if " " in auth else f"Bearer {auth}"
        pull = PullSession(self.services, url=session.request["url"], headers=headers,
                           on_event=run.on_event, tags=tags or None,
                           seed_sentence=session.request.get("seedSentence"),
                           max_audio_s=self.services.settings.tag_session_s)
        task = asyncio.create_task(self._run(run, pull))
        self._running[key] = (session.run_id, pull, task)
        task.add_done_callback(lambda _t: self._forget(key, session.run_id))

    async def close(self) -> None:
        for _, pull, _ in list(self._running.values()):
            pull.drain()
        tasks = [t for _, _, t in self._running.values()]
        await asyncio.gather(*tasks, return_exceptions=True)

    def _forget(self, key: tuple[str, str], run_id: str) -> None:
        current = self._running.get(key)
        if current is not None and current[0] == run_id:
            del self._running[key]

    async def _run(self, run: _Run, pull: PullSession) -> None:
        session = run.session
        try:
            outcome = await pull.run()
        except MemoryError:
            outcome = None
        if outcome is not None and outcome.state in ("drained", "stopped"):
            return  # listened again after the restart / replaced by a newer run
        transcript = " ".join(f.text for f in run.finals)
        speech_s = sum(f.end_sample - f.start_sample for f in run.finals) / SAMPLE_RATE
        heard_s = (outcome.audio_samples if outcome else 0) / SAMPLE_RATE
        names, extra = tag_fields(run.tags)
        result = {"tags": names, "undocumentedTags": bool(extra),
                  "undocumentedTagNames": extra, "transcript": transcript,
                  "speechSeconds": round(speech_s, 2), "heardSeconds": round(heard_s, 2),
                  "tagReason": run.tags.reason if run.tags else "insufficient_speech"}
        if outcome is None or outcome.state == "failed":
            reason = "out of memory" if outcome is None else outcome.reason
            await asyncio.to_thread(self.store.finish_tag_session, session, state="failed",
                                    reason=reason, result=result, webhook_body=None)
            logger.warning("tagging session %s failed: %s", session.convo_id, reason)
            return
        secret = owner_secret(self.services.webhook_master, session.owner)
        body = webhook_body(secret, webhook_payload(tags=names, undocumented=extra,
                                                    convo_id=session.convo_id),
                            int(time.time() * 1000))
        done = await asyncio.to_thread(self.store.finish_tag_session, session,
                                       state="completed", reason=None, result=result,
                                       webhook_body=body)
        if done:
            self.services.webhooks.wake()
            logger.info("tagging session %s completed: %s (%.1f s of speech)",
                        session.convo_id, names or "no tags", speech_s)
