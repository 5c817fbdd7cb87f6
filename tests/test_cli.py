"""The command line: every setting is a documented flag, and --help renders."""

from __future__ import annotations

import argparse
import re

import pytest

from earmark.cli import build_parser
from earmark.config import Settings
from tests.conftest import ROOT


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


def test_abbreviated_flags_are_refused(capsys: pytest.CaptureFixture[str]) -> None:
    # `--max-jobs 5` was taken as --max-jobs-per-key without a word.
    with pytest.raises(SystemExit) as exit_:
        build_parser().parse_args(["serve", "--max-jobs", "5"])
    assert exit_.value.code == 2
    assert "unrecognized arguments: --max-jobs" in capsys.readouterr().err


def _flags(parser: argparse.ArgumentParser, command: str) -> set[str]:
    """The flags of one subcommand (``serve``, ``keys create``...)."""
    for word in command.split():
        sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
        parser = sub.choices[word]
    return {o for a in parser._actions for o in a.option_strings if o.startswith("--")}


# Flags of other programs the docs show: curl, pip.
OTHER_TOOLS = {"--data-binary", "--index-url", "--no-deps"}


def test_every_flag_the_docs_name_exists() -> None:
    """A flag in the docs is the server's, or ``keys create``'s where the docs say so, or a
    benchmark's or client example's: docs/security.md named --max-jobs and --max-streams as
    server flags, which do not exist."""
    parser = build_parser()
    known = _flags(parser, "serve") | _flags(parser, "transcribe") | OTHER_TOOLS
    for script in [*(ROOT / "benchmarks").glob("*.py"), *(ROOT / "client_examples").rglob("*.py")]:
        known |= set(re.findall(r"add_argument\(\s*\"(--[a-z0-9-]+)\"", script.read_text()))
    key_flags = _flags(parser, "keys create")
    docs = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")),
            ROOT / "benchmarks" / "README.md"]
    missing = {}
    for doc in docs:
        text = doc.read_text()
        for match in re.finditer(r"(?<![\w-])(--[a-z][a-z0-9-]*[a-z0-9])(?![\w*-])", text):
            flag = match.group(1)
            said_keys = "keys create" in text[max(0, match.start() - 40):match.start()]
            if flag not in known and not (said_keys and flag in key_flags):
                missing.setdefault(flag, doc.name)
    assert not missing, f"flags the docs name that do not exist: {missing}"


def test_help_gives_each_setting_one_default(
        capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("COLUMNS", "200")
    with pytest.raises(SystemExit):
        build_parser().parse_args(["serve", "--help"])
    text = " ".join(capsys.readouterr().out.split()).split("options:", 1)[1]  # not usage
    for flag in ("--compute-type", "--max-batch", "--max-wait-ms", "--tag-model"):
        entry = text.split(flag + " ", 1)[1].split(" --", 1)[0]
        assert entry.count("default") == 1, (flag, entry)
