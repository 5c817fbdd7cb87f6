"""Telling sung lyrics and music from speech, from Whisper's own music-note prior.

Whisper learnt from subtitles to open sung passages with "♪". The backend reports, per decode,
the chance that the first token opens a music note (``Recognition.music_prob``); the text
decode itself never emits the note (it is a suppressed token). Measured with
``benchmarks/music.py`` on evaldata: at first (74 items, 1,225 decodes) finals of speech scored
at most 0.0052 and finals of sung lyrics at least 0.0086, so 0.007 was the threshold. With
finals cut at short pauses a 6.5 s piece of a song scored 0.0063 and got through, so the
threshold would have to be 0.005. A decode that reaches 0.004 with recent finals before it is
scored again with their text as Whisper's previous text (speech then scores lower: an MP3's
"Ask not" went from 0.0097 to 0.004). Measured (74 items, 1,281 decodes): 0.005 kept every
live speech final (437/437 with interims, 213/213 without) and gave no word from nonspeech,
but file jobs have no previous text for their first chunk and espeak speech there came out
empty now and then, so the default stays 0.007 (one song piece, 21 words, got through).
That piece came after a sung one: a live decode that starts within ``AFTER_MUSIC_S`` of a
final judged music is held to ``AFTER_MUSIC_THRESHOLD`` instead. Measured again (74 items,
1,282 decodes): 472/472 speech finals kept with interims, 214/214 without, and no word from
nonspeech at the default.
Short interim windows are noisier, so a sung interim may still show; the final that follows
is then sent empty, which clears it.
"""

from __future__ import annotations

DEFAULT_MUSIC_THRESHOLD = 0.007
# A song is cut into pieces, and each is scored on its own: a piece of "Let's Go Fishin'"
# scored 0.0044, 4.3 s of instrumental after one that scored 0.0226 (its own interims
# reached 0.014). A live piece that starts within AFTER_MUSIC_S of a final judged music is
# held to this lower bar, which speech decodes stay under 99 % of the time
# (benchmarks/music.py): a song stays a song, and speech after it still gets through.
AFTER_MUSIC_THRESHOLD = 0.004
AFTER_MUSIC_S = 10.0


def is_music(music_prob: float, threshold: float | None) -> bool:
    """True when one decode says music; ``threshold`` None or ≥ 1 turns the check off."""
    if threshold is None or threshold >= 1.0:
        return False
    return music_prob >= threshold
