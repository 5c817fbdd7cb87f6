from earmark.core.agreement import agreed_prefix, key, match_agreed
from earmark.core.events import Word


def words(*spec: tuple[str, int, int]) -> list[Word]:
    return [Word(text, start, end, 0.9) for text, start, end in spec]


def test_key_ignores_case_and_punctuation_but_keeps_apostrophes():
    assert key(" Printing,") == key("printing") == "printing"
    assert key("don't") == "don't" and key("Mr.") == "mr"


def test_agreement_stops_at_the_first_difference_and_near_the_older_end():
    older = words(("the", 0, 100), ("quick", 100, 300), ("brow", 300, 450))
    newer = words(("The", 0, 110), ("quick", 110, 300), ("brown", 300, 500), ("fox", 500, 700))
    assert agreed_prefix(older, 460, newer, margin=0) == 2
    assert agreed_prefix(older, 460, newer, margin=200) == 1  # "quick" ends too near 460


def test_agreed_words_are_stripped_by_text_by_time_and_at_the_seam():
    agreed = words(("printing", 0, 500), ("in", 500, 600))
    same = words(("Printing,", 0, 480), ("in", 480, 600), ("the", 600, 700))
    assert [w.text for w in match_agreed(agreed, same)[0]] == ["the"]
    # The decode heard another first word; time decides, and "in" repeated at the seam goes.
    moved = words(("Print", 0, 300), ("in", 610, 650), ("the", 650, 700))
    assert [w.text for w in match_agreed(agreed, moved)[0]] == ["the"]
    assert match_agreed([], moved)[0] == moved
