"""The code stays in small pieces: no module over 600 lines, no function over 60 lines.

Checked: the package, the step scripts, the benchmarks and the scripts at the repository root
(tests, the virtual environment, MLflow's store and the data folders are not code of ours).
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.conftest import REPO

MAX_MODULE_LINES = 600
MAX_FUNCTION_LINES = 60
ROOTS = ("meterflow", "steps", "benchmarks")


def code_files() -> list[Path]:
    """Our Python modules: the packages under ``ROOTS`` and the ``*.py`` scripts at the root."""
    files = [p for root in ROOTS for p in (REPO / root).rglob("*.py")]
    return sorted(files + list(REPO.glob("*.py")))


def long_functions(tree: ast.AST) -> list[tuple[str, int, int]]:
    """(name, first line, length) of each function or method longer than the limit, its
    decorators and docstring included."""
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
            length = node.end_lineno - first + 1
            if length > MAX_FUNCTION_LINES:
                out.append((node.name, first, length))
    return out


def test_the_checked_files_are_found() -> None:
    names = {str(p.relative_to(REPO)) for p in code_files()}
    assert {"meterflow/cli.py", "pipeline.py"} <= names
    assert any(n.startswith("benchmarks/") for n in names)
    assert any(n.startswith("steps/") for n in names)
    assert not any(n.startswith(("tests/", ".venv/", "mlruns/", "data/")) for n in names)


def test_the_function_check_measures_decorators_and_bodies() -> None:
    body = "\n".join(f"    x{i} = {i}" for i in range(60))
    tree = ast.parse(f"@staticmethod\ndef f():\n{body}\n\ndef g():\n    return 1\n")
    assert long_functions(tree) == [("f", 1, 62)]


@pytest.mark.parametrize("path", code_files(), ids=lambda p: str(p.relative_to(REPO)))
def test_modules_and_functions_are_short(path: Path) -> None:
    text = path.read_text()
    lines = len(text.splitlines())
    assert lines <= MAX_MODULE_LINES, f"{lines} lines (at most {MAX_MODULE_LINES}): split it"
    too_long = long_functions(ast.parse(text, str(path)))
    assert not too_long, (
        f"functions over {MAX_FUNCTION_LINES} lines (name, line, length): {too_long}"
    )
