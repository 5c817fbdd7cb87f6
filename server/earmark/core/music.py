"""Telling sung lyrics and music from speech, from Whisper's own music-note prior.

Whisper learnt from subtitles to open sung passages with "♪". The backend reports, per decode,
the chance that the first token opens a music note (``Recognition.music_prob``); the text
decode itself never emits the note (it is a suppressed token). Measured with
``benchmarks/music.py`` on evaldata (74 items, 1,225 decodes): finals of speech scored at most
0.0052 and finals of sung lyrics at least 0.0086, so a final at 0.007 or more is music. Short
interim windows are noisier (speech interims reach 0.02), so a sung interim may still show;
the final that follows is then sent empty, which clears it.
"""

from __future__ import annotations

DEFAULT_MUSIC_THRESHOLD = 0.007


def is_music(music_prob: float, threshold: float | None) -> bool:
    """True when one decode says music; ``threshold`` None or ≥ 1 turns the check off."""
    if threshold is None or threshold >= 1.0:
        return False
    return music_prob >= threshold
