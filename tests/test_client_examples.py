"""Pure helpers of the client examples (their end-to-end runs are in tests/e2e)."""

from __future__ import annotations

from tests.conftest import client_example

stream_file = client_example("stream_file")


def test_an_interim_wider_than_the_terminal_stays_on_one_line():
    text = "the quick brown fox jumps over the lazy dog " * 4
    line = stream_file.one_line(".. ", text, width=40)
    assert len(line) < 40  # "\r" rewrites it whole; a wrapped one left stale lines
    assert line.endswith("lazy dog ") and line.startswith(".. …")
    assert stream_file.one_line(".. ", "short", width=40) == ".. short"
