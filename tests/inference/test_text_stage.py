"""TextStage: events leave in order, a newer interim supersedes a held one, failures withhold."""

from __future__ import annotations

import asyncio
from concurrent.futures import Future

from earmark.core.events import Tags, Transcript, Word
from earmark.core.text_options import TextOptions
from earmark.inference.understanding import Understood
from earmark.live.understanding import TextStage


class GatedWorker:
    """Hands out futures the test completes by hand."""

    def __init__(self) -> None:
        self.futures: list[Future[Understood]] = []

    def submit(self, words, options) -> Future[Understood]:  # noqa: ANN001
        f: Future[Understood] = Future()
        self.futures.append(f)
        return f


def t(text: str, final: bool) -> Transcript:
    return Transcript(0, 100, (Word(text, 0, 100, 0.9),), is_final=final)


async def test_order_supersede_and_failure() -> None:
    worker = GatedWorker()
    sent: list = []
    stage = TextStage(worker, TextOptions(profanity=True), sent.append)  # type: ignore[arg-type]
    stage.on_event(t("one", True))
    stage.on_event(t("two-interim", False))
    stage.on_event(t("three-interim", False))  # supersedes the held "two-interim"
    stage.on_event(Tags(0, 100, ()))
    assert worker.futures[1].cancelled() and stage.superseded == 1
    worker.futures[2].set_result(Understood((Word("THREE", 0, 100, 0.9),), None, ()))
    await asyncio.sleep(0.01)
    assert sent == []  # "one" still holds the line
    worker.futures[0].set_exception(RuntimeError("model fell over"))
    await asyncio.sleep(0.01)
    assert [type(e).__name__ for e in sent] == ["Transcript", "Transcript", "Tags"]
    assert sent[0].words == ()  # withheld, never sent unprocessed
    assert sent[1].words[0].text == "THREE"
    await stage.flush(1.0)


async def test_a_stuck_worker_delays_but_never_loses_events() -> None:
    worker = GatedWorker()
    sent: list = []
    stage = TextStage(worker, TextOptions(profanity=True), sent.append)  # type: ignore[arg-type]
    stage.on_event(t("one", True))
    stage.on_event(Tags(0, 100, ()))
    assert stage.held_from == 0
    await stage.flush(0.05)  # the worker never answers
    assert [type(e).__name__ for e in sent] == ["Transcript", "Tags"]
    assert sent[0].words == ()  # the text stage's failure: withheld, not sent raw
    assert worker.futures[0].cancelled() and stage.held_from is None


async def test_speaker_stage_labels_words_by_the_nearest_window() -> None:
    import numpy as np

    from earmark.live.speakers import SpeakerStage

    class Scripted:
        def __init__(self) -> None:
            self.calls: list[tuple[int, bool]] = []

        model = None

        def submit(self, audio, speakers, *, learn, offset):  # noqa: ANN001
            self.calls.append((len(audio), learn))
            f: Future = Future()
            f.set_result((np.array([offset + 1000, offset + 9000]), [0, 1]))
            return f

    worker = Scripted()
    sent: list = []
    stage = SpeakerStage(worker, sent.append)  # type: ignore[arg-type]
    stage.receive_audio(np.zeros(16000, np.float32))
    words = (Word("hi", 0, 2000, 0.9), Word("there", 8000, 10000, 0.9))
    stage.on_event(Transcript(0, 12000, words, is_final=True))
    stage.on_event(Transcript(0, 12000, (), is_final=False))  # no words: passes as it is
    await asyncio.sleep(0.01)
    assert [w.speaker for w in sent[0].words] == [0, 1]
    assert worker.calls == [(12000, True)]
    assert len(sent) == 2
