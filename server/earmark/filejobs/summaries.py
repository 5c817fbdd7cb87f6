"""Conversation summaries (seed 003's Summary API), computed once per state of a transcript.

A conversation's summary changes only when one of its jobs completes, so it is kept, keyed
by the conversation and its completed jobs, in a bounded in-process cache. A job sent with
``enableSummary=true`` has its conversation's summary computed as soon as it completes, so
the first ``GET .../summary`` does not wait for the sentence model; any other conversation
has it computed on the first request. A restart only empties the cache.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict

from earmark.core.summary import summary_picks
from earmark.dialects.file_jobs import MessageRef, SummaryItem, SummaryOut, messages_body
from earmark.errors import NotReady
from earmark.inference.engine import Engine
from earmark.store.jobs import ACTIVE, JobStore

MAX_KEPT = 256  # conversations whose summary is kept


class ConversationSummaries:
    def __init__(self, store: JobStore, engine: Engine) -> None:
        self.store = store
        self.engine = engine
        self._kept: OrderedDict[tuple[str, tuple[str, ...]], SummaryOut] = OrderedDict()
        self.computed = 0  # summaries computed (not served from the cache)

    async def get(self, owner: str, conversation_id: str) -> SummaryOut:
        """The summary (raises NotFound for another owner's or an unknown conversation)."""
        conv = await asyncio.to_thread(self.store.get_conversation, owner, conversation_id)
        jobs = await asyncio.to_thread(self.store.conversation_jobs, owner, conversation_id)
        worker = self.engine.tag_worker  # None: the server runs without the sentence model
        if worker is None:
            raise NotReady("this needs the sentence model, which this server runs without "
                           "(--no-tagging)")
        key = (conversation_id,
               tuple(j.id for j in jobs if j.status.value not in ACTIVE))
        if key in self._kept:
            self._kept.move_to_end(key)
            return self._kept[key]
        results = await asyncio.to_thread(self.store.results, conversation_id)
        out = messages_body(conv.created, conversation_id, jobs, results)
        summary = SummaryOut(summary=[])
        if out:
            vectors = await asyncio.wrap_future(worker.embed([m.text for m in out]))
            picks = summary_picks([m.text for m in out], vectors)
            summary = SummaryOut(summary=[
                SummaryItem(id=f"summary-{k}", text=out[i].text,
                            messageRefs=[MessageRef(id=out[i].id, text=out[i].text, offset=0)])
                for k, i in enumerate(picks)])
        self.computed += 1
        if not any(j.status.value in ACTIVE for j in jobs):
            self._kept[key] = summary  # an unfinished conversation's summary will change
            while len(self._kept) > MAX_KEPT:
                self._kept.popitem(last=False)
        return summary

    def forget(self, conversation_id: str) -> None:
        """Drops a deleted conversation's summaries."""
        for key in [k for k in self._kept if k[0] == conversation_id]:
            del self._kept[key]
