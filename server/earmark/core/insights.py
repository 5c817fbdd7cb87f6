"""Conversation insights (seed 003, Symbl's Conversation API): questions, action items and
follow-ups, found by rules over each message's text (one message per sentence).

A rule names what a sentence does: asks (a question mark, or an opening that asks), commits
("I'll send", "we're going to fix"), requests ("can you check", "please update"), obliges ("we
need to decide", "let's meet"). An action whose verb is a contact or a meeting ("send you",
"follow up", "schedule a call") is a follow-up, not an action item. Each rule has a score,
its precision on ``benchmarks/data/insights.jsonl`` when it was written (see
``benchmarks/insights.py`` for the figures now); ``confidenceThreshold`` drops insights
scored under it. Pure functions: no model, no I/O.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

QUESTION, ACTION_ITEM, FOLLOW_UP = "question", "action_item", "follow_up"

_WH = re.compile(r"^(what|why|how|when|where|who|whom|whose|which|any|anyone|anybody)\b", re.I)
# An auxiliary opens a question only before its subject ("Do you...", not "Don't forget").
_AUX = re.compile(
    r"^(is|are|was|were|do|does|did|can|could|would|will|should|shall|may|have|has|had|"
    r"isn't|aren't|don't|doesn't|didn't|won't|wouldn't|can't|couldn't|shouldn't) (i|you|we|"
    r"they|he|she|it|there|this|that|these|those|the|a|an|our|your|my|their|his|her|anyone|"
    r"anybody|someone|somebody|everyone|everybody)\b", re.I)
# "How we did it was..." opens like a question and is not one.
_TELLS = re.compile(r"^(how|what|when|where|why|who) (i|we|you|they|he|she|it)\b(?!.*\?$)",
                    re.I)
_VERB = r"(?:(?:also|then|just|quickly|definitely|probably|both|all)\s+)?([a-z]+)"
_COMMIT = re.compile(
    r"\b(?:(?:i|we)(?:'ll| will| shall|'m going to| am going to|'re going to| are going to|"
    r"'m gonna| are gonna|'re gonna)|let me)\s+" + _VERB, re.I)
_REQUEST = re.compile(r"\b(?:can|could|would) you(?: please)?\s+" + _VERB, re.I)
_PLEASE = re.compile(r"(?:^|[,;] )please\s+" + _VERB, re.I)
_OBLIGE = re.compile(
    r"\b(?:(?:we|you|i|someone|somebody|they) (?:need to|needs to|have to|has to|must|should)|"
    r"let's|let us|make sure (?:to|you|we)|don't forget to|remember to)\s+" + _VERB, re.I)
# Verbs that make a commitment or a request no task: talk, opinion, a forecast.
_NOT_TASKS = {"be", "see", "say", "talk", "tell", "know", "think", "hope", "never", "not",
              "have", "go", "need", "want", "like", "love", "try", "keep", "start",
              "look", "hear", "feel", "remember", "agree", "imagine", "guess", "assume",
              "mean", "miss", "wait", "find", "learn", "show", "cover", "discuss", "explain",
              "believe", "wonder", "understand", "hold", "stop", "play", "win", "lose",
              "die", "live", "actually", "really", "still", "always", "probably", "all"}
_FOLLOW_UP = re.compile(
    r"\b(follow(?:\s|-)?up|get back to|reach out|circle back|touch base|check in with|"
    r"send (?:you|him|her|them|it|over|the|a|an|out|me|us)|e-?mail|call|ring|"
    r"text (?:you|him|her|them)|"
    r"schedule|set up (?:a|the) (?:call|meeting|time)|book (?:a|the) (?:call|meeting|room)|"
    r"forward|loop (?:\w+ )?in|invite)\b", re.I)
_PAST = re.compile(r"\b(said|told|thought|wished|if|unless|whether|would have)\b", re.I)

SCORES = {"question_mark": 0.9, "question_opening": 0.6, "commit": 0.8, "request": 0.75,
          "please": 0.75, "oblige": 0.65}


@dataclass(frozen=True)
class Insight:
    kind: str  # QUESTION, ACTION_ITEM or FOLLOW_UP
    message: int  # index of the message it was found in
    text: str  # the message's text
    score: float
    phrase: str | None = None  # the actionable phrase (actions and follow-ups)
    first_person: bool = False  # the speaker takes it on (the assignee is the speaker)
    definitive: bool = False  # a commitment or a request, not "we should..."


def _words(text: str) -> list[str]:
    return re.findall(r"[\w']+", text)


def question(text: str) -> float | None:
    """The score of ``text`` as a question, or None."""
    t = text.strip()
    if len(_words(t)) < 3:
        return None  # "Right?", "Okay?": a tag, not a question
    if t.endswith("?"):
        return SCORES["question_mark"]
    asks = (_WH.match(t) or _AUX.match(t)) and not _TELLS.match(t)
    if asks and len(_words(t)) >= 4 and t[-1:] != "!":
        return SCORES["question_opening"]
    return None


def action(text: str) -> tuple[str, float, str, bool, bool] | None:
    """(kind, score, phrase, first person, definitive) of ``text`` as an action, or None."""
    t = text.strip()
    found: list[tuple[float, re.Match[str], str, bool]] = []
    for rule, pattern in (("commit", _COMMIT), ("request", _REQUEST), ("please", _PLEASE),
                          ("oblige", _OBLIGE)):
        for m in pattern.finditer(t):
            verb = m.group(m.lastindex or 0).lower()
            if verb in _NOT_TASKS:
                continue
            first = rule == "commit" or m.group(0).lower().startswith(("i ", "we ", "let's"))
            found.append((SCORES[rule], m, rule, first))
    if not found:
        return None
    if _PAST.search(t[: found[0][1].start()]):
        return None  # reported or hypothetical: "she said we'd send it", "if we call them"
    score, m, _rule, first = max(found, key=lambda f: f[0])
    phrase = t[m.start():].rstrip(".?!")
    kind = FOLLOW_UP if _FOLLOW_UP.search(phrase) else ACTION_ITEM
    return kind, score, phrase, first, _rule != "oblige"


def find(texts: list[str], threshold: float = 0.5) -> list[Insight]:
    """Every insight of the messages ``texts`` scored at or over ``threshold``, in order. A
    request that asks ("Can you send the deck?") is both a question and an action."""
    out: list[Insight] = []
    for k, text in enumerate(texts):
        q = question(text)
        if q is not None and q >= threshold:
            out.append(Insight(QUESTION, k, text.strip(), q))
        a = action(text)
        if a is not None and a[1] >= threshold:
            kind, score, phrase, first, definitive = a
            out.append(Insight(kind, k, text.strip(), score, phrase, first, definitive))
    return out
