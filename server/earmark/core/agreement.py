"""Local agreement (as in whisper_streaming): the words two consecutive decodes of the same
audio agree on are final; later decodes of that audio drop them again.

Pure functions over words on the session timeline (samples at 16 kHz).
"""

from __future__ import annotations

from earmark.core import SAMPLE_RATE
from earmark.core.events import Word

SEAM_SAMPLES = SAMPLE_RATE  # how far past the agreed words a repeat of them is looked for
MAX_SEAM_WORDS = 5


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


def strip_agreed(agreed: list[Word], words: list[Word]) -> list[Word]:
    """``words`` (a new decode of the piece, on the timeline) without the ``agreed`` ones: by
    text when the decode begins with them, else by time (what is centred before the last
    agreed word's end), and then the agreed tail repeated at the seam, since a word's time
    can move between decodes."""
    if not agreed:
        return words
    keys = [key(w.text) for w in agreed]
    if [key(w.text) for w in words[: len(keys)]] == keys:
        return words[len(keys):]
    edge = agreed[-1].end_sample
    rest = [w for w in words if (w.start_sample + w.end_sample) // 2 >= edge]
    near = [w for w in rest if w.start_sample < edge + SEAM_SAMPLES]
    for n in range(min(MAX_SEAM_WORDS, len(keys), len(near)), 0, -1):
        if [key(w.text) for w in near[:n]] == keys[-n:]:
            return rest[n:]
    return rest
