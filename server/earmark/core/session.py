"""The partial/final policy of one live stream, as a pure state machine.

Inputs: ``receive_audio`` (16 kHz samples with one VAD probability per 512-sample window),
``receive_result`` / ``receive_failure`` (recogniser answers), ``receive_finalize`` and
``receive_close`` (client control). Outputs, swapped out when read: ``requests_to_send()``
(audio for the recogniser) and ``events_to_send()`` (what the client should hear).

Invariants the tests check: finals never overlap and never change; no interim result for audio
that a final already covers; word times are monotonic and inside the audio received.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from earmark.core import SAMPLE_RATE, WINDOW_SAMPLES
from earmark.core.agreement import agreed_prefix, match_agreed
from earmark.core.audio import AudioBuffer
from earmark.core.events import (
    Event,
    Priority,
    Recognition,
    RecognitionRequest,
    SpeechStarted,
    StreamClosed,
    Transcript,
    UtteranceEnd,
    Word,
)
from earmark.core.music import (
    AFTER_MUSIC_S,
    AFTER_MUSIC_THRESHOLD,
    DEFAULT_MUSIC_THRESHOLD,
    is_music,
)
from earmark.core.segmenter import SegmentEnd, Segmenter, SegmenterConfig, SegmentStart
from earmark.errors import RecognitionFailed

_AT_COMMITTED = -1  # start hint of a region whose start is the next forced-cut point
MAX_PROMPT_CHARS = 600  # ~120 words of previous text; the backend keeps the newest tokens


@dataclass(frozen=True)
class SessionConfig:
    """Streaming policy; durations in samples at 16 kHz.

    Attributes:
        interim_results: send partial results while someone speaks.
        partial_interval_samples: new audio between two partial requests (the scheduler may
            stretch it under load: one partial per session is in flight at most).
        speech_final: finals at a VAD endpoint carry ``speech_final`` (Deepgram ``endpointing``);
            with it off, the same finals are sent with ``speech_final: false``.
        max_utterance_samples: speech longer than this is cut at a word boundary (forced final).
        hold_back_samples: on a forced cut, words ending in this tail are left for the next final
            (the last word may be cut in half).
        early_final_samples: silence after which the final is decoded speculatively, before
            the endpoint confirms it; it is used if the endpoint lands where predicted (None:
            off). Takes the decode time off the final's latency.
        pause_cut_after_samples: continuous talk: once the speech since the last cut is at
            least this long, a short pause (``pause_cut_samples`` of VAD silence) ends a final
            at once (``is_final``, ``speech_final: false``); the region stays open, so the
            endpoint still comes as ``speech_final``. None: finals only at endpoints and
            forced cuts.
        pause_cut_samples: the pause that cuts, in samples of VAD silence (Silero reports a
            pause some 50-100 ms after it starts).
        agreement_margin_samples: local agreement: words on which two consecutive interim
            decodes of the same audio agree, and that end at least this long before the
            older decode's end, are final at once (``speech_final: false``); later decodes
            of the piece still hear them but drop them. None: off (no interims, no
            agreement).
        agreement_piece_samples: a piece with agreed words is decoded from its start, so the
            model hears the sentence; once the decodes would read more than this, the piece
            restarts after its last agreed sentence end (else clause end). Whisper looped in
            longer windows, and their cost grows with them (None: the piece runs to the
            forced cut).
        agreement_min_probability: a word either decode gave a lower probability is not
            agreed: a greedy interim decode can be steadily wrong, and such words wait for
            the final's beam search.
        context_samples: a request carries the text of the finals that ended at most this
            long before its audio (chained), for the music check: a short stretch of speech
            alone can score like a song (None: none).
        utterance_end_samples: gap after the last word that sends ``UtteranceEnd`` (None: off).
        vad_events: send ``SpeechStarted``.
        hotwords: custom vocabulary passed to every request.
        language: language of every request (None: the model's; "auto": detected per request).
        music_threshold: a decode that says music (``core/music.py``) gives no text: an
            interim is not sent, a final is sent empty (None: off).
        finalize_beam_size: beam of the decode that answers a ``Finalize`` (a voice agent
            waits on it to end the user's turn); None: the finals' beam.
        finalize_early_samples: once a client has sent a ``Finalize`` (a voice agent, which
            sends one when its own VAD hears the user stop), the final is decoded
            speculatively after this much silence instead of ``early_final_samples``, so it is
            ready, or nearly, when the next Finalize comes (None: no change).
    """

    interim_results: bool = True
    partial_interval_samples: int = 6400
    speech_final: bool = True
    max_utterance_samples: int = 15 * SAMPLE_RATE
    hold_back_samples: int = 8000
    early_final_samples: int | None = 3200
    pause_cut_after_samples: int | None = 24000
    pause_cut_samples: int = 2048
    agreement_margin_samples: int | None = 4800
    agreement_piece_samples: int | None = 8 * SAMPLE_RATE
    agreement_min_probability: float = 0.5
    context_samples: int | None = 3 * SAMPLE_RATE
    utterance_end_samples: int | None = None
    vad_events: bool = False
    hotwords: str | None = None
    language: str | None = None
    music_threshold: float | None = DEFAULT_MUSIC_THRESHOLD
    finalize_beam_size: int | None = None
    finalize_early_samples: int | None = None
    segmenter: SegmenterConfig = SegmenterConfig()


@dataclass(frozen=True)
class _FinalJob:
    start_hint: int  # the final starts at max(committed, start_hint)
    end_sample: int
    speech_final: bool
    from_finalize: bool = False
    forced: bool = False  # cut where no pause was: the cut point comes with its result
    silent: bool = False  # VAD heard nothing in it (the rest of a pause after a cut)


@dataclass
class _Early:
    """A speculative final request for [start, end), and its result once it arrives."""

    request: RecognitionRequest
    result: Recognition | None = None


class StreamSession:
    """One stream's state. Not thread-safe: drive it from one thread (the event loop)."""

    def __init__(self, config: SessionConfig) -> None:
        self.config = config
        self.segmenter = Segmenter(config.segmenter)
        self.buffer = AudioBuffer()
        self.committed_sample = 0  # audio before this is final (or known silence)
        self._speech_start: int | None = None  # start hint of the open speech region
        self._last_cut = 0  # where the open region's forced-final clock starts
        self._jobs: deque[_FinalJob] = deque()
        self._final_in_flight: tuple[RecognitionRequest, _FinalJob] | None = None
        self._partial_in_flight: RecognitionRequest | None = None
        self._early: _Early | None = None
        self._partial_interval: int | None = config.partial_interval_samples
        self._speculate = True  # early finals allowed (off while the model is behind)
        self._finalizes = False  # the client sends Finalize (a voice agent)
        self._stale: list[int] = []  # speculative requests no final will use
        self.decoded_until = 0  # audio before this is covered by some decoded result
        self._last_partial_end = 0
        self._last_partial_text = ""
        self._interim_open = False  # an interim was sent that no final has closed yet
        self._last_word_end: int | None = None
        self._utterance_end_due = False
        self._owes_speech_final = False  # finals of this region went out before its endpoint
        self._quiet_since_cut = False  # no speech window since the last pause cut
        self._context: deque[tuple[int, str]] = deque()  # (end sample, text) of recent finals
        self._music_end: int | None = None  # where the last final judged music ended
        # Local agreement: words of the open piece already sent as final, where the piece's
        # audio starts (requests still decode from there), and the last interim decode.
        self._agreed: list[Word] = []
        self._piece_start = 0
        self._prev_partial: tuple[int, int, int, list[Word]] | None = None  # start, end, k, words
        self._closing = False
        self._closed = False
        self._next_id = 0
        self._events: list[Event] = []
        self._requests: list[RecognitionRequest] = []

    # ----------------------------------------------------------------- outputs
    def events_to_send(self) -> list[Event]:
        events, self._events = self._events, []
        return events

    def requests_to_send(self) -> list[RecognitionRequest]:
        requests, self._requests = self._requests, []
        return requests

    def requests_to_cancel(self) -> list[int]:
        """Ids of sent requests whose result no longer matters (a speculative final after
        the speaker went on): the caller should take them off the model's queue."""
        stale, self._stale = self._stale, []
        return stale

    @property
    def now_sample(self) -> int:
        return self.buffer.end_sample

    @property
    def pending_finals(self) -> int:
        """Finals queued or being decoded: a measure of how far behind this session is."""
        return len(self._jobs) + (self._final_in_flight is not None)

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def lag_samples(self) -> int:
        """Audio received that no result (interim or final) has covered yet."""
        return max(0, self.now_sample - max(self.decoded_until, self.committed_sample))

    def set_partial_interval(self, samples: int | None) -> None:
        """Load shedding from outside: a longer interval, or None to ask for no partials."""
        self._partial_interval = samples

    def set_early_finals(self, enabled: bool) -> None:
        """Load shedding from outside: no new speculative finals while off. A speculation is
        wasted whenever the speaker goes on after a short pause, which a busy model cannot
        afford; with finals already queued it would not arrive early anyway."""
        self._speculate = enabled

    # ------------------------------------------------------------------ inputs
    def receive_audio(self, samples: npt.NDArray[np.float32], probs: list[float]) -> None:
        """Appends whole VAD windows (``len(samples) == 512 * len(probs)``)."""
        if len(samples) != WINDOW_SAMPLES * len(probs):
            raise ValueError("samples must be whole VAD windows, one probability each")
        if self._closing:
            raise RuntimeError("audio after receive_close()")
        for i, prob in enumerate(probs):
            self.buffer.append(samples[i * WINDOW_SAMPLES : (i + 1) * WINDOW_SAMPLES])
            for event in self.segmenter.receive_probs([prob]):
                if isinstance(event, SegmentStart):
                    self._open_region(event.start_sample)
                else:
                    self._close_region(event, from_finalize=False)
            if self.segmenter.in_speech and self.segmenter.silence_start is None:
                self._quiet_since_cut = False
            self._maybe_force_cut()
            self._maybe_decode_early()
        self._after_input()

    def receive_finalize(self) -> None:
        """Client asked to flush the current utterance now (Deepgram ``Finalize``). Every
        Finalize is answered by a final marked ``from_finalize``, empty when nothing was
        pending (voice agents wait for it to end the user's turn)."""
        self._finalizes = True
        # In a pause, end where a speculative final of this pause ends, so it answers.
        early = self._early
        end = self.segmenter.force_end(
            in_pause=True, at=early.request.end_sample if early is not None else None)
        if end is not None:
            self._close_region(end, from_finalize=True)
        else:
            now = self.now_sample
            self._jobs.append(_FinalJob(now, now, False, from_finalize=True, silent=True))
        self._after_input()

    def receive_close(self) -> None:
        """End of stream: flush everything, then emit ``StreamClosed``."""
        end = self.segmenter.force_end()
        if end is not None:
            self._close_region(end, from_finalize=False)
        self._closing = True
        self._after_input()

    def receive_result(self, request_id: int, recognition: Recognition) -> None:
        early = self._early
        if early is not None and early.request.request_id == request_id:
            early.result = recognition
        final = self._final_in_flight
        if final is not None and final[0].request_id == request_id:
            self._final_in_flight = None
            self.decoded_until = max(self.decoded_until, final[0].end_sample)
            self._commit(final[0], final[1], recognition)
        elif self._partial_in_flight is not None and (
            self._partial_in_flight.request_id == request_id
        ):
            request, self._partial_in_flight = self._partial_in_flight, None
            self.decoded_until = max(self.decoded_until, request.end_sample)
            self._emit_partial(request, recognition)
        self._after_input()

    def receive_failure(self, request_id: int) -> None:
        """A request's model call failed. A lost partial is harmless; a lost final is not."""
        if self._partial_in_flight is not None and (
            self._partial_in_flight.request_id == request_id
        ):
            self._partial_in_flight = None
            self._after_input()
            return
        if self._early is not None and self._early.request.request_id == request_id:
            self._early = None
        final = self._final_in_flight
        if final is not None and final[0].request_id == request_id:
            raise RecognitionFailed("the recogniser failed on a final result; closing the stream")
        self._after_input()

    # ----------------------------------------------------------------- regions
    def _open_region(self, start_sample: int) -> None:
        start = max(start_sample, self.committed_sample)
        self._speech_start = start
        self._last_cut = start
        self._utterance_end_due = False
        if self.config.vad_events:
            self._events.append(SpeechStarted(start))

    def _close_region(self, end: SegmentEnd, *, from_finalize: bool) -> None:
        if self._speech_start is None:
            return
        speech_final = self.config.speech_final and not from_finalize
        # Whisper "hears" words (a "Thank you.") in the silence left after a pause cut.
        self._jobs.append(
            _FinalJob(self._speech_start, end.end_sample, speech_final, from_finalize,
                      silent=self._quiet_since_cut)
        )
        self._quiet_since_cut = False
        self._speech_start = None
        self._submit_final()  # now, while a speculative decode for this region is still valid

    def _maybe_force_cut(self) -> None:
        if self._speech_start is None:
            return
        if self.now_sample - self._last_cut < self.config.max_utterance_samples:
            return
        # The cut point is known only when the result arrives; the next job starts there.
        self._jobs.append(_FinalJob(self._speech_start, self.now_sample, False, forced=True))
        self._speech_start = _AT_COMMITTED
        self._last_cut = self.now_sample

    def _maybe_cut_at_pause(self) -> bool:
        """Continuous talk: a short pause in a long enough stretch of speech ends a final."""
        after, silence_start = self.config.pause_cut_after_samples, self.segmenter.silence_start
        if after is None or silence_start is None or self._speech_start is None:
            return False
        if self._speech_start == _AT_COMMITTED or self._early is not None:
            return False
        if self.config.pause_cut_samples >= self.config.segmenter.silence_samples:
            return False  # the endpoint comes first
        if self.now_sample - silence_start < self.config.pause_cut_samples:
            return False
        start = max(self.committed_sample, self._speech_start)
        if self.now_sample - start < after:
            return False
        cut = self.now_sample
        self._jobs.append(_FinalJob(self._speech_start, cut, False))
        self._speech_start = cut
        self._last_cut = cut
        self._quiet_since_cut = True
        self._submit_final()
        return True

    def _maybe_decode_early(self) -> None:
        """Decodes the final speculatively once the trailing silence is long enough."""
        silence_start = self.segmenter.silence_start
        if silence_start is None:
            if self.segmenter.in_speech:
                self._drop_early()  # talking again: a speculative result would be stale
            return
        if self._maybe_cut_at_pause() or self._quiet_since_cut:
            return  # nothing was said since the cut: no final to speculate on
        early_samples = self.config.early_final_samples
        if self._finalizes and self.config.finalize_early_samples is not None:
            early_samples = self.config.finalize_early_samples
        if early_samples is None or self._early is not None or self._speech_start is None:
            return
        if not self._speculate:
            return
        if self.now_sample - silence_start < early_samples or self.pending_finals:
            return
        start = max(self.committed_sample, self._speech_start)
        end = self.segmenter.end_if_silence_holds()
        if end - start < WINDOW_SAMPLES:
            return
        request = self._new_request(Priority.FINAL, self._decode_start(start), end)
        self._early = _Early(request)
        self._requests.append(request)

    def _drop_early(self) -> None:
        if self._early is not None and self._early.result is None:
            self._stale.append(self._early.request.request_id)
        self._early = None

    # ------------------------------------------------------------ scheduling
    def _after_input(self) -> None:
        self._submit_final()
        self._submit_partial()
        self._maybe_utterance_end()
        self._release_silence()
        if self._closing and not self._closed and self.pending_finals == 0:
            self._closed = True
            self._events.append(StreamClosed(self.now_sample))

    def _new_request(self, priority: Priority, start: int, end: int,
                     beam_size: int | None = None) -> RecognitionRequest:
        self._next_id += 1
        return RecognitionRequest(
            request_id=self._next_id,
            priority=priority,
            start_sample=start,
            audio=self.buffer.slice(start, end),
            previous_text=self._previous_text(start),
            hotwords=self.config.hotwords,
            language=self.config.language,
            beam_size=beam_size,
        )

    def _previous_text(self, start: int) -> str | None:
        reach = self.config.context_samples
        if reach is None:
            return None
        while self._context and self._context[0][0] < start - reach:
            self._context.popleft()
        # Chained: each final is near the one before it, the newest near this audio.
        texts: list[str] = []
        edge = start
        for end, text in reversed(self._context):
            if end < edge - reach:
                break
            texts.append(text)
            edge = end
        return " ".join(reversed(texts))[-MAX_PROMPT_CHARS:] or None

    def _decode_start(self, start: int) -> int:
        """Requests of a piece with agreed words still decode from the piece's start."""
        return self._piece_start if self._agreed else start

    def _submit_final(self) -> None:
        # Finals of one stream are decoded one at a time, in order: a forced cut decides
        # where the next final starts.
        if self._final_in_flight is not None or not self._jobs:
            return
        job = self._jobs.popleft()
        # Agreed words exist only while no final is queued, so this job ends their piece.
        start = max(self.committed_sample, job.start_hint)
        if job.end_sample - start < WINDOW_SAMPLES or job.silent:
            self._commit_empty(job, start)
            self._submit_final()
            return
        early, self._early = self._early, None
        if early is not None and (early.request.start_sample, early.request.end_sample) == (
            self._decode_start(start),
            job.end_sample,
        ):
            if early.result is not None:  # decoded while the endpoint silence ran
                self._commit(early.request, job, early.result)
                self._submit_final()
            else:
                self._final_in_flight = (early.request, job)
            return
        if early is not None and early.result is None:
            self._stale.append(early.request.request_id)  # it ended elsewhere
        request = self._new_request(
            Priority.FINAL, self._decode_start(start), job.end_sample,
            beam_size=self.config.finalize_beam_size if job.from_finalize else None)
        self._final_in_flight = (request, job)
        self._requests.append(request)

    def _submit_partial(self) -> None:
        interval = self._partial_interval
        if not self.config.interim_results or interval is None:
            return
        if self._closing or self._speech_start is None:
            return
        if self._partial_in_flight is not None or self.segmenter.silence_start is not None:
            return  # one in flight at most; none while the speaker is silent
        if any(job.forced for job in self._jobs) or (
            self._final_in_flight is not None and self._final_in_flight[1].forced
        ):
            return  # the region's start is unknown until the forced cut lands
        start = max(self.committed_sample, self._speech_start)
        end = self.now_sample
        if end - max(start, self._last_partial_end) < interval:
            return
        self._last_partial_end = end
        request = self._new_request(Priority.PARTIAL, self._decode_start(start), end)
        self._partial_in_flight = request
        self._requests.append(request)

    # ---------------------------------------------------------------- results
    def _place_words(self, request: RecognitionRequest,
                     recognition: Recognition) -> tuple[list[Word], bool]:
        """Moves words onto the session timeline, inside the request audio and monotonic,
        without the words of the piece already final by agreement; and whether the decode's
        text showed where those end (else it is no ground for agreeing on more)."""
        lo, hi = request.start_sample, request.end_sample
        words = [Word(w.text, min(lo + w.start_sample, hi), min(lo + w.end_sample, hi),
                      w.probability) for w in recognition.words if w.text.strip()]
        seam_known = True
        if self._agreed and request.start_sample == self._piece_start:
            words, seam_known = match_agreed(self._agreed, words)
        floor = max(lo, self._last_word_end or 0)
        placed: list[Word] = []
        for word in words:
            if floor > hi:
                # The words before ran past this request's audio (agreed from a longer
                # interim): nothing is left here to hear, and clamping one back to ``hi``
                # would put it before its predecessor.
                break
            start = min(max(word.start_sample, floor), hi)
            end = min(max(word.end_sample, start), hi)
            placed.append(Word(word.text, start, end, word.probability))
            floor = end
        return placed, seam_known

    def _agree(self, request: RecognitionRequest, words: list[Word], seam_known: bool,
               language: str | None) -> list[Word]:
        """Local agreement: sends as final the words this interim decode and the one before
        it agree on (well inside the older one); returns the words left for the interim."""
        margin = self.config.agreement_margin_samples
        prev, self._prev_partial = self._prev_partial, (
            request.start_sample, request.end_sample, len(self._agreed), words)
        if not seam_known:
            self._prev_partial = None  # nor for the next decode to agree with
            return words
        if margin is None or prev is None or self.pending_finals:
            return words
        p_start, p_end, p_k, p_words = prev
        if p_start != request.start_sample or p_k != len(self._agreed):
            return words
        n = agreed_prefix(p_words, p_end, words, margin, self.config.agreement_min_probability)
        if n == 0:
            return words
        agreed, rest = words[:n], words[n:]
        # At the last agreed word's end: later words are placed after it, whatever a later
        # decode says, so no final ever starts after its first word.
        boundary = agreed[-1].end_sample
        if not self._agreed:
            self._piece_start = request.start_sample
        self._agreed.extend(agreed)
        self._prev_partial = (request.start_sample, request.end_sample, len(self._agreed), rest)
        self._maybe_restart_piece(request.end_sample)
        self._events.append(Transcript(self.committed_sample, boundary, tuple(agreed), True,
                                       False, False, language=language))
        self._after_final_words(agreed)
        self._remember(agreed)
        self._interim_open = False
        self._last_partial_text = ""
        self.committed_sample = max(self.committed_sample, boundary)
        return rest

    def _maybe_restart_piece(self, decoded_to: int) -> None:
        limit = self.config.agreement_piece_samples
        if limit is None or decoded_to - self._piece_start <= limit:
            return
        for marks in (".?!", ",;:"):
            for i in range(len(self._agreed) - 1, -1, -1):
                if self._agreed[i].text.rstrip()[-1:] in marks:
                    self._piece_start = self._agreed[i].end_sample
                    self._agreed = self._agreed[i + 1 :]
                    return

    def _emit_partial(self, request: RecognitionRequest, recognition: Recognition) -> None:
        # Stale: a final moved the boundary after this partial was asked for.
        if self._speech_start is None or request.start_sample != self._decode_start(
            max(self.committed_sample, self._speech_start)
        ):
            return
        if is_music(recognition.music_prob, self._music_bar(request.start_sample)):
            return  # a sung interim; its final will say so too, or bring the text
        placed, seam_known = self._place_words(request, recognition)
        words = self._agree(request, placed, seam_known, recognition.language)
        partial = Transcript(self.committed_sample, request.end_sample, tuple(words), False,
                             language=recognition.language)
        if not words or partial.text == self._last_partial_text:
            return
        self._last_partial_text = partial.text
        self._interim_open = True
        self._events.append(partial)

    def _commit(self, request: RecognitionRequest, job: _FinalJob, result: Recognition) -> None:
        words, _ = self._place_words(request, result)
        if is_music(result.music_prob, self._music_bar(request.start_sample)):
            words = []
            self._music_end = request.end_sample
        boundary = request.end_sample
        if job.forced and words:
            tail = request.end_sample - self.config.hold_back_samples
            keep = [w for w in words if w.end_sample <= tail]
            if keep and len(keep) < len(words):
                boundary = max(keep[-1].end_sample, words[len(keep)].start_sample)
                words = keep
            elif keep:
                # Nothing heard in the tail: a word the cut split may have been dropped
                # whole, so the next final starts where the last word heard ends.
                boundary = keep[-1].end_sample
        self._emit_final(max(request.start_sample, self.committed_sample), boundary, words, job,
                         result.language, result.language_probability)

    def _music_bar(self, start: int) -> float | None:
        """The music threshold for a decode from ``start``: lower just after music."""
        bar = self.config.music_threshold
        if bar is None or bar >= 1.0 or self._music_end is None:
            return bar
        if start - self._music_end <= AFTER_MUSIC_S * SAMPLE_RATE:
            return min(bar, AFTER_MUSIC_THRESHOLD)
        return bar

    def _after_final_words(self, words: list[Word]) -> None:
        """Words went out final before the endpoint: it will still say speech_final."""
        if not words:
            return
        if self.config.speech_final:
            self._owes_speech_final = True
        self._last_word_end = words[-1].end_sample
        self._utterance_end_due = True

    def _remember(self, words: list[Word]) -> None:
        self._context.append((words[-1].end_sample, " ".join(w.text.strip() for w in words)))
        while len(self._context) > 64:
            self._context.popleft()

    def _commit_empty(self, job: _FinalJob, start: int) -> None:
        self._emit_final(start, max(start, job.end_sample), [], job)

    def _emit_final(self, start: int, end: int, words: list[Word], job: _FinalJob,
                    language: str | None = None, confidence: float | None = None) -> None:
        self._agreed, self._prev_partial = [], None  # the piece ends with this final
        owed = job.speech_final and self._owes_speech_final
        if words or self._interim_open or owed or job.from_finalize:
            self._events.append(
                Transcript(start, end, tuple(words), True, job.speech_final, job.from_finalize,
                           language=language, language_confidence=confidence)
            )
        if job.speech_final or job.from_finalize:
            self._owes_speech_final = False
        else:
            self._after_final_words(words)
        if words:
            self._last_word_end = words[-1].end_sample
            self._utterance_end_due = True
            self._remember(words)
        self._interim_open = False
        self._last_partial_text = ""
        self.committed_sample = max(self.committed_sample, end)
        self._last_partial_end = max(self._last_partial_end, end)
        if job.forced and self._speech_start == _AT_COMMITTED:
            self._speech_start = end
        self.buffer.trim_before(self.committed_sample)

    def _maybe_utterance_end(self) -> None:
        gap = self.config.utterance_end_samples
        if gap is None or not self._utterance_end_due or self._last_word_end is None:
            return
        if self._speech_start is not None or self.pending_finals:
            return
        if self.now_sample - self._last_word_end >= gap or self._closing:
            self._utterance_end_due = False
            self._events.append(UtteranceEnd(self._last_word_end))

    def _release_silence(self) -> None:
        """Lets go of silent audio that no future request can reach."""
        if self._speech_start is not None or self.pending_finals:
            return
        floor = self.now_sample - self.config.segmenter.lookback_samples
        if floor > self.committed_sample:
            self.committed_sample = floor
            self.buffer.trim_before(floor)
        self.decoded_until = max(self.decoded_until, self.now_sample)  # silence needs none
