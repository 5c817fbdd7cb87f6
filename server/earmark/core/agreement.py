"""Local agreement (as in whisper_streaming): the words two consecutive decodes of the same
audio agree on are final; later decodes of that audio drop them again.

Pure functions over words on the session timeline (samples at 16 kHz).
"""

from __future__ import annotations

from earmark.core import SAMPLE_RATE
from earmark.core.events import Word

SEAM_SAMPLES = SAMPLE_RATE  # how far past the agreed words a repeat of them is looked for
MAX_SEAM_WORDS = 5
MAX_ALIGN_WORDS = 8  # agreed words matched against a new decode


def key(text: str) -> str:
    """A word as agreement compares it: case and punctuation aside."""
    return "".join(ch for ch in text.lower() if ch.isalnum() or ch == "'")


def agreed_prefix(older: list[Word], older_end: int, newer: list[Word], margin: int,
                  min_probability: float = 0.0) -> int:
    """How many leading words of ``newer`` the ``older`` decode agrees on, counting only words
    that end at least ``margin`` before the older decode's audio ended (its last word may have
    been cut off by the end of its audio) and that both decodes were sure enough of."""
    n = 0
    for a, b in zip(older, newer, strict=False):
        if key(a.text) != key(b.text) or b.end_sample > older_end - margin:
            break
        if min(a.probability, b.probability) < min_probability:
            break
        n += 1
    return n


def match_agreed(agreed: list[Word], words: list[Word]) -> tuple[list[Word], bool]:
    """``words`` (a new decode of the piece, on the timeline) without the ``agreed`` ones,
    and whether the decode's text showed where they end. By text when the decode begins
    with them; else where the decode repeats the agreed tail near its time (an earlier word
    heard differently: "moveable" for "movable"); else by time (what is centred before the
    last agreed word's end), then the agreed tail repeated at the seam, since a word's time
    can move between decodes. The time fallback can drop a word that was never agreed, or
    keep one that was: such a decode is no ground for agreeing on more words."""
    if not agreed:
        return words, True
    keys = [key(w.text) for w in agreed]
    if [key(w.text) for w in words[: len(keys)]] == keys:
        return words[len(keys):], True
    edge = agreed[-1].end_sample
    aligned = _aligned_end(keys[-MAX_ALIGN_WORDS:], words, edge)
    if aligned is not None:
        return words[aligned:], True
    rest = [w for w in words if (w.start_sample + w.end_sample) // 2 >= edge]
    near = [w for w in rest if w.start_sample < edge + SEAM_SAMPLES]
    for n in range(min(MAX_SEAM_WORDS, len(keys), len(near)), 0, -1):
        if [key(w.text) for w in near[:n]] == keys[-n:]:
            return rest[n:], False
    return rest, False


def _aligned_end(tail: list[str], words: list[Word], edge: int) -> int | None:
    """Index in ``words`` just past a repeat of the agreed ``tail``'s last words near the
    agreed edge: at least two words (or the whole tail) within SEAM_SAMPLES, else the last
    agreed word alone within half that; the nearest such repeat (a phrase said twice)."""
    need = min(2, len(tail))
    best: tuple[bool, int] | None = None
    found = None
    for j in range(1, len(words) + 1):
        n = 0
        while n < len(tail) and n < j and key(words[j - 1 - n].text) == tail[-1 - n]:
            n += 1
        off = abs(words[j - 1].end_sample - edge)
        if n >= need and off <= SEAM_SAMPLES:
            rank = (True, -off)
        elif n >= 1 and off <= SEAM_SAMPLES // 2:
            rank = (False, -off)
        else:
            continue
        if best is None or rank > best:
            best, found = rank, j
    return found
