"""Pure text options: replace, profanity masks, redaction spans and spoken numbers."""

from __future__ import annotations

import pytest

from earmark.core.events import Word
from earmark.core.text_options import (
    Span,
    apply_replacements,
    as_numerals,
    joined,
    luhn_ok,
    mask_profanity,
    pattern_spans,
    redact,
    redact_kinds,
    spoken_number_spans,
)


def ws(text: str) -> list[Word]:
    return [Word(" " + t, i * 100, i * 100 + 80, 0.9) for i, t in enumerate(text.split())]


def text(words: list[Word]) -> str:
    return " ".join(w.text.strip() for w in words)


def test_replacements_keep_punctuation_and_merge_phrase_times() -> None:
    out = apply_replacements(ws("I flew to New York, then Colour."),
                             [("new york", "NYC"), ("colour", "color")])
    assert text(out) == "I flew to NYC, then color."
    nyc = out[3]
    assert (nyc.start_sample, nyc.end_sample) == (300, 480)


def test_profanity_keeps_the_first_letter() -> None:
    out = mask_profanity(ws("well damn, that is Shit."), lambda w: w.lower() in {"damn", "shit"})
    assert text(out) == "well d***, that is S***."


def test_redaction_merges_a_span_into_one_timed_word() -> None:
    words = ws("call 555 123 4567 now")
    full, starts = joined(words)
    spans = pattern_spans(full, frozenset({"phone"}))
    assert spans == [Span(5, 17, "phone")]
    out = redact(words, spans)
    assert text(out) == "call [PHONE_NUMBER] now"
    assert (out[1].start_sample, out[1].end_sample) == (100, 380)
    assert text(redact(words, spans, "hash")).startswith("call ########## now")


@pytest.mark.parametrize(("said", "kind"), [
    ("four one one one one one one one one one one one one one one one", "card"),
    ("4111 1111 1111 1111", "card"),
    ("078 05 1120", "ssn"),
    ("five five five, one two three, four five six seven", "phone"),
    ("double five five one two three four five six seven", "phone"),
])
def test_spoken_numbers(said: str, kind: str) -> None:
    words = ws(f"it is {said} okay")
    spans = spoken_number_spans(words, frozenset({"card", "ssn", "phone"}))
    assert [s.kind for s in spans] == [kind]
    assert text(redact(words, spans)).startswith("it is [")


def test_short_numbers_and_failed_luhn_are_not_pii() -> None:
    kinds = frozenset({"card", "ssn", "phone"})
    assert spoken_number_spans(ws("we sold 25 units and 3 more"), kinds) == []
    assert not luhn_ok("4111111111111112") and luhn_ok("4111111111111111")
    assert pattern_spans("card 4111 1111 1111 1112", frozenset({"card"})) == []


def test_redact_kinds_aliases_and_errors() -> None:
    assert redact_kinds(["pci"]) == {"card"}
    assert "name" in redact_kinds(["true"]) and "date" not in redact_kinds(["pii"])
    with pytest.raises(ValueError):
        redact_kinds(["passwords"])


def test_every_assemblyai_policy_is_redacted_or_refused_with_a_reason() -> None:
    # AssemblyAI's PII policy list: each maps onto detectors here or is refused by name.
    policies = (
        "account_number banking_information blood_type credit_card_cvv credit_card_expiration "
        "credit_card_number date date_interval date_of_birth drivers_license drug duration "
        "email_address event filename gender_sexuality healthcare_number injury ip_address "
        "language location location_address location_address_street location_city "
        "location_coordinate location_country location_state location_zip marital_status "
        "medical_condition medical_process money_amount nationality number_sequence "
        "occupation organization organization_medical_facility passport_number password "
        "person_age person_name phone_number physical_attribute political_affiliation "
        "religion statistics time url us_social_security_number username vehicle_id "
        "zodiac_sign").split()
    refused = []
    for policy in policies:
        try:
            assert redact_kinds([policy]), policy
        except ValueError as exc:
            assert "cannot detect" in str(exc), policy
            refused.append(policy)
    assert "person_name" not in refused and "location_city" not in refused
    assert "blood_type" in refused and "password" in refused
    assert redact_kinds(["location_zip"]) == {"number"}


def test_numerals_merge_the_words_of_a_number_and_keep_their_times() -> None:
    def convert(t: str) -> str:  # what text2num does to these sentences
        return (t.replace("nine hundred ninety nine", "999")
                .replace("nineteen sixty two", "19 62"))

    out = as_numerals(ws("I paid nine hundred ninety nine dollars"), convert)
    assert text(out) == "I paid 999 dollars"
    assert (out[2].start_sample, out[2].end_sample) == (200, 580)  # "nine" .. "nine"
    assert out[3].start_sample == 600
    years = as_numerals(ws("in nineteen sixty two"), convert)
    assert text(years) == "in 19 62"
    assert [(w.start_sample, w.end_sample) for w in years[1:]] == [(100, 180), (200, 380)]
    assert as_numerals([], convert) == []
    plain = ws("no numbers here")
    assert as_numerals(plain, convert) == plain
