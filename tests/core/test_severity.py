"""Content-safety severity cues (``core/severity``): the levels, and what moves talk up."""

from __future__ import annotations

import pytest

from earmark.core.severity import HIGH, LOW, MEDIUM, level_of, severity


@pytest.mark.parametrize(("category", "text", "level"), [
    ("alcohol", "We shared a bottle of wine with dinner.", LOW),
    ("alcohol", "He got so drunk he fell over.", MEDIUM),
    ("alcohol", "The drunk driver killed a cyclist.", HIGH),
    ("weapons", "An antique dagger hangs in the hall.", LOW),
    ("weapons", "He keeps a loaded pistol in the car.", MEDIUM),
    ("weapons", "They planned to detonate explosives at the match.", HIGH),
    ("gambling", "A small bet on the quiz.", LOW),
    ("gambling", "He lost his wages at the casino.", MEDIUM),
    ("gambling", "Gambling debts and loan sharks ruined him.", HIGH),
    ("nsfw", "The couple kissed goodnight.", LOW),
    ("nsfw", "A film with nudity.", MEDIUM),
    ("nsfw", "Explicit pornographic videos.", HIGH),
])
def test_levels(category: str, text: str, level: str) -> None:
    assert level_of(severity(category, text)) == level


def test_harm_to_people_is_high_in_every_category_and_cues_are_per_category() -> None:
    for category in ("hate_speech", "crime_violence", "drugs", "alcohol", "gambling",
                     "weapons", "nsfw", "a category of a future catalogue"):
        assert level_of(severity(category, "Three people died.")) == HIGH
    # "lost" grades gambling talk, not a story about a lost dog.
    assert level_of(severity("gambling", "He lost a hundred at poker.")) == MEDIUM
    assert level_of(severity("crime_violence", "He lost his dog.")) == LOW


def test_the_numbers_read_back_as_their_levels() -> None:
    assert [level_of(x) for x in (0.0, 0.39, 0.4, 0.74, 0.75, 1.0)] == [
        LOW, LOW, MEDIUM, MEDIUM, HIGH, HIGH]
