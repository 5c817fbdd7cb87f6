"""Content-safety severity: how grave the flagged talk is, once its category is known.

The category comes from the tagger (sentence embeddings); the embeddings place "a beer on the
lawn" and "he drank himself to death" close together, so they cannot grade them. Severity is
graded by cues instead: harm to people (death, mass violence, a call to kill, an overdose, a
ruined life) makes talk high; a harmful act or a clear endorsement of one (an assault, dealing,
getting drunk, a loaded gun, sex, a slur that dehumanises) makes it medium; a flagged category
with neither is low (a joke, a glass of wine, a raffle ticket, a pocket knife, a kiss).
Each category adds its own medium and high cues to the shared ones.

The cue lists were written on ``benchmarks/data/safety_severity.jsonl`` (the dev split) and
are measured on ``safety_severity_test.jsonl``, a split written before them and never tuned
on (``benchmarks/safety.py`` prints both). Pure functions: no model, no I/O.
"""

from __future__ import annotations

import re

LOW, MEDIUM, HIGH = "low", "medium", "high"
# The number sent for each level, and the bounds a receiver reads them back with
# (severity_score_summary counts each result's level).
LEVEL_SCORE = {LOW: 0.2, MEDIUM: 0.55, HIGH: 0.9}


def level_of(score: float) -> str:
    """The level a severity number stands for: < 0.4 low, < 0.75 medium, else high."""
    return LOW if score < 0.4 else MEDIUM if score < 0.75 else HIGH


def _cues(*patterns: str) -> re.Pattern[str]:
    return re.compile(r"\b(?:" + "|".join(patterns) + r")\b", re.I)


# Harm to people, in any category.
_HIGH = _cues(
    r"kill\w*", r"murder\w*", r"died", r"dead", r"death", r"to death",
    r"hunted down", r"suicide",
    r"bomb\w*", r"explosives?", r"detonat\w*",
    r"blow(?:s|n)? up", r"blew (?:\w+ )?up",
    r"shoot(?:ing)? up", r"shot (?:\w+ )?(?:dead|people)",
    r"terror\w*", r"overdos\w*",
    r"liver failure", r"rushed to hospital", r"on the street",
    r"ruin(?:ed|s)? (?:him|her|them|his|her|their)",
)
_MEDIUM = _cues(
    r"assault\w*", r"beat(?:s|ing|en)?(?: up)?", r"attack\w*", r"mugg?\w*",
    r"rob(?:s|bed|bing|bery|beries|bers?)?", r"threat\w*", r"knocked \w+ to",
    r"arrest\w*", r"seized", r"stole", r"fight\w*",
    r"broken (?:nose|jaw|arm|leg)", r"illegal\w*", r"unlicensed",
)
_CATEGORY = {
    "hate_speech": (
        _cues(r"vermin", r"parasites?", r"disease",
              r"backward", r"ruining",
              r"don'?t belong", r"kept out",
              r"sent back",
              r"slurs?", r"hate\w*"),
        _cues(r"every (?:last )?(?:one|member|jew|muslim|black|gay)"),
    ),
    "crime_violence": (
        _cues(r"gang", r"knife", r"gun\w*"),
        _cues(r"stabb?\w*", r"serial killer"),
    ),
    "drugs": (
        _cues(r"cocaine", r"snort\w*", r"lines", r"pills",
              r"speed", r"deal\w*", r"sell\w*", r"sold"),
        _cues(r"heroin", r"fentanyl", r"crack", r"meth",
              r"addict\w*", r"laced"),
    ),
    "alcohol": (
        _cues(r"drunk", r"wasted", r"plastered",
              r"shots",
              r"shouting"),
        _cues(r"drunk driv\w*",
              r"a (?:bottle|litre|liter) of \w+ a day", r"\w+ a day",
              r"crash\w*", r"hit a"),
    ),
    "gambling": (
        _cues(r"casino\w*", r"slot machines?", r"roulette", r"poker", r"lost",
              r"losing", r"wages", r"paycheck",
              r"savings", r"for hours", r"betting apps?"),
        _cues(r"addict\w*", r"debts?", r"loan sharks?",
              r"(?:his|her|their) (?:home|house|business|marriage)", r"stole", r"ruin\w*"),
    ),
    "weapons": (
        _cues(r"pistol", r"handgun", r"pulled a \w+",
              r"under the bed", r"in case of", r"seized"),
        _cues(r"assault rifles?", r"machine guns?",
              r"car bomb", r"rounds",
              r"ammunition"),
    ),
    "nsfw": (
        _cues(r"sex\w*", r"nude\w*", r"nudity", r"steamy",
              r"slept together", r"bedroom"),
        _cues(r"porn\w*", r"explicit", r"graphic",
              r"sex acts?"),
    ),
}


def severity(category: str, text: str) -> float:
    """A severity number in [0, 1] for ``text`` flagged as ``category`` (see ``level_of``)."""
    medium, high = _CATEGORY.get(category, (None, None))
    if _HIGH.search(text) or (high is not None and high.search(text)):
        return LEVEL_SCORE[HIGH]
    if _MEDIUM.search(text) or (medium is not None and medium.search(text)):
        return LEVEL_SCORE[MEDIUM]
    return LEVEL_SCORE[LOW]
