"""Style gates from STYLE.md: ruff everywhere, mypy strict on the pure core."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


RUFF = Path(sys.executable).parent / "ruff"


@pytest.mark.skipif(not RUFF.exists() and shutil.which("ruff") is None,
                    reason="ruff is not installed (pip install -e '.[test]')")
def test_ruff_is_clean():
    ruff = str(RUFF) if RUFF.exists() else str(shutil.which("ruff"))
    out = subprocess.run([ruff, "check", "server", "tests", "benchmarks", "client_examples"],
                         cwd=ROOT, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_core_is_mypy_strict_clean():
    out = subprocess.run([sys.executable, "-m", "mypy", "server/earmark/core"], cwd=ROOT,
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr

