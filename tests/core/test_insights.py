from earmark.core.insights import ACTION_ITEM, FOLLOW_UP, QUESTION, find


def kinds(texts: list[str], threshold: float = 0.5) -> list[tuple[int, str]]:
    return [(i.message, i.kind) for i in find(texts, threshold)]


def test_questions_by_mark_or_by_opening_but_not_tags_or_statements():
    texts = ["Who is presenting the results?", "Do you have the keys", "Right?",
             "How we did it was simple.", "Don't forget to lock up."]
    assert [k for k in kinds(texts) if k[1] == QUESTION] == [(0, QUESTION), (1, QUESTION)]


def test_commitments_and_requests_are_actions_and_contacts_are_follow_ups():
    texts = ["I'll draft the press release.", "Could you check the logs?",
             "I'll call the landlord tomorrow.", "We'll see how it goes.",
             "She said we would send it on Monday.", "Let me reach out to the supplier."]
    assert kinds(texts) == [(0, ACTION_ITEM), (1, QUESTION), (1, ACTION_ITEM),
                            (2, FOLLOW_UP), (5, FOLLOW_UP)]


def test_the_threshold_drops_weaker_rules_and_the_assignee_is_the_speaker_who_commits():
    texts = ["We need to hire two engineers.", "I will update the docs."]
    assert kinds(texts, 0.7) == [(1, ACTION_ITEM)]
    found = find(texts)
    assert [(i.first_person, i.definitive) for i in found] == [(True, False), (True, True)]
    assert found[1].phrase == "I will update the docs"
