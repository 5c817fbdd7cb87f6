"""Pure helpers of the client examples (their end-to-end runs are in tests/e2e)."""

from __future__ import annotations

import importlib.util

from tests.conftest import ROOT

_spec = importlib.util.spec_from_file_location(
    "stream_file", ROOT / "client_examples" / "stream_file.py")
stream_file = importlib.util.module_from_spec(_spec)  # type: ignore[arg-type]
_spec.loader.exec_module(stream_file)  # type: ignore[union-attr]


def test_an_interim_wider_than_the_terminal_stays_on_one_line():
    text = "the quick brown fox jumps over the lazy dog " * 4
    line = stream_file.one_line(".. ", text, width=40)
    assert len(line) < 40  # "\r" rewrites it whole; a wrapped one left stale lines
    assert line.endswith("lazy dog ") and line.startswith(".. …")
    assert stream_file.one_line(".. ", "short", width=40) == ".. short"
