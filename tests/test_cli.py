"""The command line: every setting is a documented flag, and --help renders."""

from __future__ import annotations

import pytest

from earmark.cli import build_parser
from earmark.config import Settings


def test_serve_help_lists_every_setting_with_its_variable(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")  # narrow terminals split long words
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["serve", "--help"])  # raised TypeError on a "%" once
    assert exit_.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps to the terminal
    for name in Settings.model_fields:
        assert "--" + name.replace("_", "-") in text
        assert f"EARMARK_{name.upper()}" in text
    assert "~30 % faster" in text
