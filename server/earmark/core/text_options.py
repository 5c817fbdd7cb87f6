"""Word-level text options, pure: find-and-replace, profanity masking, redaction spans.

Everything works on ``Word`` tuples so that timings survive: a replaced or masked word keeps
its times; a redacted span of several words becomes one word from the first word's start to
the last word's end. Pattern detectors (emails, phone numbers, card numbers with a Luhn check,
US social security numbers, any number) live here; model-based spans (names, places) come in
as character spans from ``inference/understanding.py``.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field, replace

from earmark.core.events import Word

# Redaction categories. "pii" is every one of them.
PATTERN_KINDS = ("email", "phone", "card", "ssn", "number")
MODEL_KINDS = ("name", "location", "organization", "date")
ALL_KINDS = PATTERN_KINDS + MODEL_KINDS
ALIASES = {"pci": ("card",), "ssn": ("ssn",), "numbers": ("number",),
           "pii": ("email", "phone", "card", "ssn", "name", "location"),
           "person_name": ("name",), "email_address": ("email",),
           "phone_number": ("phone",), "credit_card_number": ("card",),
           "us_social_security_number": ("ssn",), "location": ("location",),
           "organization": ("organization",), "date": ("date",), "name": ("name",),
           "email": ("email",), "phone": ("phone",), "card": ("card",),
           "number": ("number",),
           # AssemblyAI's other policy names, as what the detectors here find: each mapping
           # redacts at least what the policy names (digits go with "number").
           "location_address": ("location", "number"),
           "location_address_street": ("location", "number"),
           "location_city": ("location",), "location_country": ("location",),
           "location_state": ("location",), "location_zip": ("number",),
           "location_coordinate": ("number",),
           "organization_medical_facility": ("organization",),
           "date_of_birth": ("date", "number"), "date_interval": ("date", "number"),
           "time": ("date", "number"), "duration": ("date", "number"),
           "account_number": ("number",), "banking_information": ("number",),
           "passport_number": ("number",), "drivers_license": ("number",),
           "healthcare_number": ("number",), "vehicle_id": ("number",),
           "number_sequence": ("number",), "credit_card_cvv": ("number",),
           "credit_card_expiration": ("number",), "person_age": ("number",),
           "money_amount": ("number",), "statistics": ("number",)}
# AssemblyAI policies nothing here can find: refused, since their words would stay unredacted.
UNDETECTABLE = frozenset({
    "blood_type", "drug", "injury", "medical_condition", "medical_process",
    "gender_sexuality", "marital_status", "political_affiliation", "religion", "nationality",
    "language", "event", "occupation", "physical_attribute", "zodiac_sign", "filename",
    "ip_address", "url", "username", "password"})
LABELS = {"email": "EMAIL_ADDRESS", "phone": "PHONE_NUMBER", "card": "CREDIT_CARD_NUMBER",
          "ssn": "US_SOCIAL_SECURITY_NUMBER", "number": "NUMBER", "name": "PERSON_NAME",
          "location": "LOCATION", "organization": "ORGANIZATION", "date": "DATE"}

_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9.-]+\.[A-Za-z]{2,}")
_SSN = re.compile(r"(?<!\d)\d{3}[- ]\d{2}[- ]\d{4}(?!\d)")
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
_PHONE = re.compile(r"(?<![\d+])(?:\+?\d{1,3}[ .-]?)?(?:\(\d{3}\)|\d{3})[ .-]?\d{3}[ .-]?\d{4}"
                    r"(?!\d)")
_NUMBER = re.compile(r"(?<![\w.])\d[\d,.]*(?![\w])")


@dataclass(frozen=True)
class Span:
    """[start, end) characters of the joined text, and its kind (a key of LABELS)."""

    start: int
    end: int
    kind: str


@dataclass(frozen=True)
class TextOptions:
    replace: tuple[tuple[str, str], ...] = ()  # (lower-case word or phrase, replacement)
    profanity: bool = False
    redact: frozenset[str] = field(default_factory=frozenset)  # kinds from ALL_KINDS
    redact_sub: str = "entity_name"  # "entity_name" ([PHONE_NUMBER]) or "hash" (####)
    sentiment: bool = False
    entities: bool = False
    highlights: bool = False  # key phrases (YAKE)
    numerals: bool = False  # spoken numbers as digits ("twenty first" -> "21st")

    @property
    def needs_model(self) -> bool:
        return (self.sentiment or self.entities or self.profanity or self.highlights
                or bool(self.redact & set(MODEL_KINDS)))

    @property
    def active(self) -> bool:
        return bool(self.replace or self.profanity or self.redact or self.sentiment
                    or self.entities or self.highlights or self.numerals)


def redact_kinds(values: Iterable[str]) -> frozenset[str]:
    """Maps request values (Deepgram's pci/ssn/numbers/pii, AssemblyAI policy names) to kinds.
    Raises ValueError naming an unknown one."""
    kinds: set[str] = set()
    for value in values:
        v = value.strip().lower()
        if v in ("true", ""):
            v = "pii"
        if v in UNDETECTABLE:
            raise ValueError(f"{v} (this server cannot detect it, so it would stay "
                             "unredacted)")
        if v not in ALIASES:
            raise ValueError(v)
        kinds.update(ALIASES[v])
    return frozenset(kinds)


def joined(words: Sequence[Word]) -> tuple[str, list[int]]:
    """The words' text joined by spaces, and each word's first character offset."""
    starts: list[int] = []
    parts: list[str] = []
    pos = 0
    for w in words:
        t = w.text.strip()
        starts.append(pos)
        parts.append(t)
        pos += len(t) + 1
    return " ".join(parts), starts


def luhn_ok(digits: str) -> bool:
    total = 0
    for i, ch in enumerate(reversed(digits)):
        d = int(ch)
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def pattern_spans(text: str, kinds: frozenset[str]) -> list[Span]:
    """Emails, card numbers (13-19 digits passing Luhn), SSNs, phone numbers, numbers."""
    spans: list[Span] = []
    if "email" in kinds:
        spans += [Span(m.start(), m.end(), "email") for m in _EMAIL.finditer(text)]
    if "card" in kinds:
        for m in _CARD.finditer(text):
            digits = re.sub(r"\D", "", m.group())
            if 13 <= len(digits) <= 19 and luhn_ok(digits):
                spans.append(Span(m.start(), m.end(), "card"))
    if "ssn" in kinds:
        spans += [Span(m.start(), m.end(), "ssn") for m in _SSN.finditer(text)]
    if "phone" in kinds:
        spans += [Span(m.start(), m.end(), "phone") for m in _PHONE.finditer(text)]
    if "number" in kinds:
        spans += [Span(m.start(), m.end(), "number") for m in _NUMBER.finditer(text)]
    return spans


_DIGIT_WORDS = {"zero": "0", "oh": "0", "o": "0", "one": "1", "two": "2", "three": "3",
                "four": "4", "five": "5", "six": "6", "seven": "7", "eight": "8", "nine": "9",
                "double": "", "triple": ""}


def spoken_number_spans(words: Sequence[Word], kinds: frozenset[str]) -> list[Span]:
    """Digit sequences as speech recognisers write them: "4111 1111 ...", "5 5 5 1 2 3",
    "four one one one", "double five" (runs of digit groups and digit words, any mix).
    A run of 13-19 digits that passes Luhn is a card, 9 digits in 3-2-4 groups an SSN, 7 to
    15 other digits a phone number."""
    text, starts = joined(words)
    spans: list[Span] = []
    run: list[int] = []
    digits = ""

    def close() -> None:
        nonlocal run, digits
        if run:
            groups = [g for i in run for g in _bare(words[i].text).split("-")]
            kind = _digit_kind(digits, groups)
            if kind in kinds:
                first, last = run[0], run[-1]
                spans.append(Span(starts[first], starts[last] + len(words[last].text.strip()),
                                  kind))
        run, digits = [], ""

    repeat = 1
    for i, w in enumerate(words):
        bare = _bare(w.text).lower().replace("-", "")
        if bare.isdigit() or bare in _DIGIT_WORDS:
            if bare == "double":
                repeat = 2
            elif bare == "triple":
                repeat = 3
            else:
                digits += (bare if bare.isdigit() else _DIGIT_WORDS[bare]) * repeat
                repeat = 1
            run.append(i)
        else:
            close()
            repeat = 1
    close()
    return spans


def _digit_kind(digits: str, groups: list[str]) -> str | None:
    if 13 <= len(digits) <= 19 and luhn_ok(digits):
        return "card"
    if len(digits) == 9 and [len(g) for g in groups] == [3, 2, 4]:
        return "ssn"
    if 7 <= len(digits) <= 15:
        return "phone"
    return None


def phrase_times(words: Sequence[Word], phrase: str) -> list[tuple[int, int]]:
    """(start_sample, end_sample) of every place the phrase is said (case-insensitive)."""
    target = phrase.lower().split()
    bare = [_bare(w.text).lower() for w in words]
    n = len(target)
    return [(words[i].start_sample, words[i + n - 1].end_sample)
            for i in range(len(words) - n + 1) if n and bare[i:i + n] == target]


def apply_replacements(words: Sequence[Word], table: Sequence[tuple[str, str]]) -> list[Word]:
    """Case-insensitive whole-word (or phrase) find-and-replace; punctuation around the
    matched words is kept."""
    out = list(words)
    for source, target in table:
        n = len(source.split())
        i = 0
        while i + n <= len(out):
            window = out[i:i + n]
            bare = " ".join(_bare(w.text) for w in window).lower()
            if bare == source:
                first, last = window[0], window[-1]
                lead = first.text[: len(first.text) - len(first.text.lstrip())]
                tail = _trailing_punct(last.text)
                merged = Word(lead + target + tail, first.start_sample, last.end_sample,
                              min(w.probability for w in window), first.speaker,
                              first.channel)
                out[i:i + n] = [merged]
            i += 1
    return out


def as_numerals(words: Sequence[Word], convert: Callable[[str], str]) -> list[Word]:
    """Spoken numbers as digits, with times kept: ``convert`` rewrites the text (text2num's
    ``alpha2digit``), and the words it merged become one word from the first one's start to
    the last one's end ("nine hundred ninety nine" -> "999"). Where the digits come out as
    several tokens ("nineteen sixty two" -> "19 62"), the span is shared among them."""
    if not words:
        return []
    source = [w.text.strip() for w in words]
    target = convert(" ".join(source)).split()
    out: list[Word] = []
    matcher = difflib.SequenceMatcher(a=source, b=target, autojunk=False)
    for op, i1, i2, j1, j2 in matcher.get_opcodes():
        if op == "equal":
            out += words[i1:i2]
            continue
        if op == "delete" or j1 == j2:
            continue  # (not produced by the converter: it only merges words)
        group = words[i1:i2] if i2 > i1 else words[max(0, i1 - 1):i1]
        n = j2 - j1
        for k in range(n):
            part = group[k * len(group) // n:max(k * len(group) // n + 1,
                                                  (k + 1) * len(group) // n)]
            first, last = part[0], part[-1]
            lead = first.text[: len(first.text) - len(first.text.lstrip())]
            out.append(Word(lead + target[j1 + k], first.start_sample, last.end_sample,
                            min(w.probability for w in part), first.speaker, first.channel))
    return out


def mask_profanity(words: Sequence[Word], is_profane: Callable[[str], bool]) -> list[Word]:
    """A profane word keeps its first letter: "f***"."""
    out = []
    for w in words:
        bare = _bare(w.text)
        if bare and is_profane(bare):
            masked = bare[0] + "*" * (len(bare) - 1)
            out.append(replace(w, text=w.text.replace(bare, masked)))
        else:
            out.append(w)
    return out


def redact(words: Sequence[Word], spans: Iterable[Span], sub: str = "entity_name") -> list[Word]:
    """Replaces every word a span touches; the words of one span become one word."""
    text, starts = joined(words)
    kind_of: dict[int, tuple[int, str]] = {}  # word index -> (span id, kind)
    for k, span in enumerate(sorted(spans, key=lambda s: (s.start, -s.end))):
        for i, begin in enumerate(starts):
            end = begin + len(words[i].text.strip())
            if begin < span.end and end > span.start and i not in kind_of:
                kind_of[i] = (k, span.kind)
    out: list[Word] = []
    i = 0
    while i < len(words):
        if i not in kind_of:
            out.append(words[i])
            i += 1
            continue
        span_id, kind = kind_of[i]
        j = i
        while j + 1 < len(words) and kind_of.get(j + 1, (None,))[0] == span_id:
            j += 1
        label = f"[{LABELS[kind]}]" if sub != "hash" else "#" * max(
            4, sum(len(_bare(w.text)) for w in words[i:j + 1]))
        out.append(Word(label + _trailing_punct(words[j].text), words[i].start_sample,
                        words[j].end_sample, min(w.probability for w in words[i:j + 1]),
                        words[i].speaker, words[i].channel))
        i = j + 1
    return out


def _bare(text: str) -> str:
    return text.strip().strip(".,!?;:\"()[]")


def _trailing_punct(text: str) -> str:
    t = text.rstrip()
    k = len(t)
    while k and t[k - 1] in ".,!?;:":
        k -= 1
    return t[k:]
