"""The offline path for file jobs: VAD over the whole file, chunks, the scheduler's FILE lane.

Not the live partial machinery: every speech chunk is known up front, so all of them are
queued at job priority (a bounded number in flight per job, so one long file cannot fill the
scheduler's queue) and batched with whatever else is waiting.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
from collections.abc import Sequence
from concurrent.futures import Future
from dataclasses import dataclass, replace

import numpy as np
import numpy.typing as npt

from earmark.core import SAMPLE_RATE, WINDOW_SAMPLES
from earmark.core.chunking import Chunk, plan_chunks, speech_regions, unheard
from earmark.core.events import Priority, Recognition, RecognitionRequest, Word
from earmark.core.messages import Message, merge_channels, sentences
from earmark.core.music import DEFAULT_MUSIC_THRESHOLD, is_music
from earmark.core.segmenter import SegmenterConfig
from earmark.errors import Overloaded
from earmark.filejobs.audio_file import DecodedAudio, Row
from earmark.inference.scheduler import InferenceScheduler
from earmark.inference.vad import SileroVad

logger = logging.getLogger(__name__)

_ids = itertools.count(1)
MAX_IN_FLIGHT = 8  # chunks of one job queued at once
MAX_CHUNK_S = 24.0  # leaves the decode window room for padding within Whisper's 30 s
MAX_GAP_S = 3.0  # regions further apart are decoded separately
CONTEXT_GAP_SAMPLES = 3 * SAMPLE_RATE  # the previous chunk's text counts if it ended this near


@dataclass(frozen=True)
class FileOptions:
    hotwords: str | None = None
    vad_threshold: float = 0.5
    language: str | None = None  # None: the model's; "auto": detected per chunk
    music_threshold: float | None = DEFAULT_MUSIC_THRESHOLD  # a sung chunk gives no words


def speech_probs(vad: SileroVad, audio: DecodedAudio) -> list[list[float]]:
    """Silero probabilities per 512-sample window for each channel row (blocking). Reads
    the audio ~16 s at a time, so memory does not grow with the file."""
    whole = audio.samples - audio.samples % WINDOW_SAMPLES
    states = [vad.new_state() for _ in range(audio.channels)]
    probs: list[list[float]] = [[] for _ in range(audio.channels)]
    step = 512 * WINDOW_SAMPLES
    for start in range(0, whole, step):
        block = audio.read(start, min(whole, start + step))
        rows = [np.ascontiguousarray(row) for row in block]
        for i, got in enumerate(vad.probs_batch(states, rows)):
            probs[i].extend(got)
    return probs


def _segmenter(threshold: float) -> SegmenterConfig:
    return SegmenterConfig(threshold=threshold, neg_threshold=max(0.01, threshold - 0.15))


def chunks_for(probs: Sequence[float], threshold: float) -> list[Chunk]:
    return plan_chunks(probs, _segmenter(threshold),
                       max_chunk_samples=int(MAX_CHUNK_S * SAMPLE_RATE),
                       max_gap_samples=int(MAX_GAP_S * SAMPLE_RATE))


async def _submit(scheduler: InferenceScheduler, owner: object,
                  request: RecognitionRequest) -> Future[Recognition]:
    delay = 0.05
    while True:
        try:
            return scheduler.submit(owner, request)
        except Overloaded:
            # A full queue is live traffic's to use; a file job waits its turn.
            await asyncio.sleep(delay)
            delay = min(delay * 2, 1.0)


async def recognise_chunks(
    scheduler: InferenceScheduler,
    owner: object,
    row: Row | npt.NDArray[np.float32],
    chunks: list[Chunk],
    options: FileOptions,
    regions: Sequence[Chunk] = (),
    heard: list[tuple[int, int, str | None, float | None]] | None = None,
) -> list[tuple[Word, ...]]:
    """Words of each chunk on the file's timeline, in chunk order. ``regions`` (the speech
    regions the chunks were packed from): a chunk whose decode skipped one of them is
    decoded again region by region (``core.chunking.unheard``). ``heard`` gets (start,
    end, language, its probability) of every decode, for language detection."""
    results: list[tuple[Word, ...] | None] = [None] * len(chunks)
    music: set[int] = set()  # chunks that scored like a song
    pending: dict[asyncio.Future[Recognition], int] = {}
    todo = iter(enumerate(chunks))
    try:
        while True:
            while len(pending) < MAX_IN_FLIGHT:
                nxt = next(todo, None)
                if nxt is None:
                    break
                i, chunk = nxt
                request = RecognitionRequest(next(_ids), Priority.FILE, chunk.start_sample,
                                             row[chunk.start_sample:chunk.end_sample],
                                             hotwords=options.hotwords,
                                             language=options.language)
                future = await _submit(scheduler, owner, request)
                pending[asyncio.wrap_future(future)] = i
            if not pending:
                break
            done, _ = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
            for fut in done:
                i = pending.pop(fut)
                recognition = fut.result()
                if is_music(recognition.music_prob, options.music_threshold):
                    music.add(i)
                    results[i] = ()
                    continue
                results[i] = _placed(recognition, chunks[i])
                if heard is not None:
                    heard.append((chunks[i].start_sample, chunks[i].end_sample,
                                  recognition.language, recognition.language_probability))
    finally:
        for fut in pending:
            fut.cancel()
    # As live: a short stretch of speech can score like a song on its own; what was said
    # just before decides (the chunk is asked again with that text; rare, so one by one).
    for i in sorted(music):
        before = results[i - 1] if i else None
        if not before or chunks[i].start_sample - before[-1].end_sample > CONTEXT_GAP_SAMPLES:
            continue
        request = RecognitionRequest(next(_ids), Priority.FILE, chunks[i].start_sample,
                                     row[chunks[i].start_sample:chunks[i].end_sample],
                                     hotwords=options.hotwords, language=options.language,
                                     previous_text=" ".join(w.text.strip() for w in before))
        again = await asyncio.wrap_future(await _submit(scheduler, owner, request))
        if not is_music(again.music_prob, options.music_threshold):
            results[i] = _placed(again, chunks[i])
    split = {i: parts for i, chunk in enumerate(chunks) if i not in music
             if (parts := unheard(regions, results[i] or (), chunk))}
    if split:
        logger.debug("%d chunks skipped a region; decoding their regions one by one",
                     len(split))
        jobs = [(i, region) for i, parts in split.items() for region in parts]
        futures = []
        for _, region in jobs:
            request = RecognitionRequest(next(_ids), Priority.FILE, region.start_sample,
                                         row[region.start_sample:region.end_sample],
                                         hotwords=options.hotwords, language=options.language)
            futures.append(asyncio.wrap_future(await _submit(scheduler, owner, request)))
        words: dict[int, list[Word]] = {i: [] for i in split}
        for (i, region), got in zip(jobs, await asyncio.gather(*futures), strict=True):
            before = words[i]
            if is_music(got.music_prob, options.music_threshold) and before and (
                    region.start_sample - before[-1].end_sample <= CONTEXT_GAP_SAMPLES):
                # Alone, a short stretch can score like a song; what was said before decides.
                request = RecognitionRequest(
                    next(_ids), Priority.FILE, region.start_sample,
                    row[region.start_sample:region.end_sample], hotwords=options.hotwords,
                    language=options.language,
                    previous_text=" ".join(w.text.strip() for w in before[-40:]))
                got = await asyncio.wrap_future(await _submit(scheduler, owner, request))
            if not is_music(got.music_prob, options.music_threshold):
                words[i].extend(_placed(got, region))
                if heard is not None:
                    heard.append((region.start_sample, region.end_sample, got.language,
                                  got.language_probability))
        for i, found in words.items():
            results[i] = tuple(found)
    return [r or () for r in results]


def _placed(recognition: Recognition, chunk: Chunk) -> tuple[Word, ...]:
    offset = chunk.start_sample
    return tuple(replace(w, start_sample=w.start_sample + offset,
                         end_sample=w.end_sample + offset) for w in recognition.words)


async def transcribe_file(
    scheduler: InferenceScheduler,
    vad: SileroVad,
    audio: DecodedAudio,
    options: FileOptions,
    heard: list[tuple[int, int, int, str | None, float | None]] | None = None,
) -> tuple[list[Message], list[list[float]]]:
    """Sentences of every channel row of ``audio`` (16 kHz), merged by start time, and the
    VAD probabilities of each row (for diarization). Each chunk is read from the decoded
    file when it is queued, so at most ``MAX_IN_FLIGHT`` chunks per row are in memory.
    ``heard`` gets (channel, start, end, language, probability) of every decode."""
    owner = object()
    probs = await asyncio.to_thread(speech_probs, vad, audio)

    async def one(channel: int, row: Row, row_probs: list[float]) -> list[Message]:
        chunks = chunks_for(row_probs, options.vad_threshold)
        regions = speech_regions(row_probs, _segmenter(options.vad_threshold))
        spans: list[tuple[int, int, str | None, float | None]] = []
        words = await recognise_chunks(scheduler, owner, row, chunks, options, regions, spans)
        if heard is not None:
            heard.extend((channel, *span) for span in spans)
        return sentences(words, channel=channel)

    per_channel = await asyncio.gather(*(
        one(channel, row, row_probs)
        for channel, (row, row_probs) in enumerate(zip(audio.rows(), probs, strict=True),
                                                   start=1)))
    return merge_channels(per_channel), probs
