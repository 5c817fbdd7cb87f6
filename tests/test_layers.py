"""The import contract: each layer imports only the layers below it (docs/design.md).

Read from the source with ``ast`` (imports inside functions count too), so a new arrow the
wrong way fails here, not in review.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parents[1] / "server" / "earmark"

# Of our own packages and modules, what each layer may import (itself always).
ALLOWED = {
    "core": {"errors"},
    "inference": {"core", "errors", "config"},
    "dialects": {"core", "errors", "config", "store", "inference"},
    "store": {"core", "errors", "config", "inference"},
    "live": {"core", "errors", "config", "inference"},
    "filejobs": {"core", "errors", "config", "inference", "store", "dialects", "live"},
    "ingest": {"core", "errors", "config", "inference", "dialects", "live", "store", "auth",
               "metrics", "outbound"},
    "outbound": {"core", "errors", "config", "dialects", "store"},
    "livejobs": {"core", "errors", "config", "inference", "dialects", "live", "store",
                 "ingest", "outbound"},
}
# Only these may import the HTTP layer.
API_USERS = {"api", "cli"}


def our_imports(path: Path) -> set[str]:
    """The first component under ``earmark.`` of every import in the file."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        names: list[str] = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "earmark" and len(parts) > 1 and not parts[1].startswith("__"):
                found.add(parts[1])  # (``__version__`` is the package's own, not a layer)
    return found


def layer_of(path: Path) -> str:
    rel = path.relative_to(PACKAGE)
    return rel.parts[0] if len(rel.parts) > 1 else rel.stem


def test_every_layer_imports_only_what_it_may() -> None:
    wrong: list[str] = []
    for path in sorted(PACKAGE.rglob("*.py")):
        layer = layer_of(path)
        imported = our_imports(path) - {layer}
        if "api" in imported and layer not in API_USERS:
            wrong.append(f"{path.relative_to(PACKAGE)} imports api")
        allowed = ALLOWED.get(layer)
        if allowed is not None:
            wrong += [f"{path.relative_to(PACKAGE)} imports {name}"
                      for name in sorted(imported - allowed)]
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_the_contract_sees_a_wrong_import(tmp_path) -> None:
    bad = tmp_path / "x.py"
    bad.write_text("def f():\n    from earmark.api.app import create_app\n")
    assert "api" in our_imports(bad)


def test_every_error_a_client_can_see_is_in_errors_py() -> None:
    """One tree: a class that reaches clients (an EarmarkError) is defined in errors.py."""
    outside = []
    for path in sorted(PACKAGE.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PACKAGE:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.ClassDef) and any(
                    getattr(b, "id", None) == "EarmarkError"
                    or getattr(getattr(b, "value", None), "id", None) == "errors"
                    for b in node.bases):
                outside.append(f"{path.relative_to(PACKAGE)}: {node.name}")
    assert not outside, outside


# The layers a request passes through stay small enough to read: a module of the live,
# ingest, job-service and HTTP layers over this many lines, or a function over the other
# limit, is split (issue 21).
SIZED = ("live", "ingest", "livejobs", "outbound", "api")
MAX_MODULE_LINES, MAX_FUNCTION_LINES = 400, 60


def test_modules_and_functions_stay_small() -> None:
    big: list[str] = []
    for layer in SIZED:
        for path in sorted((PACKAGE / layer).glob("*.py")):
            source = path.read_text()
            if (n := len(source.splitlines())) > MAX_MODULE_LINES:
                big.append(f"{path.relative_to(PACKAGE)}: {n} lines")
            for node in ast.walk(ast.parse(source, str(path))):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
                    length = (node.end_lineno or node.lineno) - node.lineno + 1
                    if length > MAX_FUNCTION_LINES:
                        big.append(f"{path.relative_to(PACKAGE)}: {node.name}() {length} lines")
    assert not big, "over the size limits:\n" + "\n".join(big)


# The app's services are typed and passed explicitly (issue 21): ``app.state`` holds the one
# services object, set by the app factory's lifespan and read by the two accessors.
STATE_READERS = {"api/app.py", "ingest/services.py", "cli.py"}


def test_only_the_accessors_touch_app_state() -> None:
    found = []
    for path in sorted(PACKAGE.rglob("*.py")):
        rel = str(path.relative_to(PACKAGE))
        if rel in STATE_READERS:
            continue
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if (isinstance(node, ast.Attribute) and node.attr == "state"
                    and isinstance(node.value, ast.Attribute | ast.Name)
                    and getattr(node.value, "attr", getattr(node.value, "id", "")) == "app"):
                found.append(f"{rel}:{node.lineno}")
    assert not found, "app.state read outside the services accessors:\n" + "\n".join(found)
