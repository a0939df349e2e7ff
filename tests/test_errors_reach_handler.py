"""Every error the package raises on bad input reaches the entry points' one-line handler.

The handler (``meterflow.cli.failure_reason``) prints one line for a ``MeterflowError`` and keeps
the traceback of anything else, as a bug. So code that rejects data or options raises a
``MeterflowError`` subclass (``InputError`` where a ValueError was natural), never a bare
ValueError/KeyError/TypeError/RuntimeError. Two exceptions, found by reading the code:
pydantic validators, whose ValueError pydantic turns into the one-line ConfigError, and a raise
caught by an enclosing ``try`` of the same function.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pytest

from meterflow.anomaly.alerts import naive_times
from meterflow.cli import failure_reason
from meterflow.errors import InputError, MeterflowError
from tests.conftest import REPO, subprocess_env

PACKAGE = REPO / "meterflow"
BARE = frozenset({"ValueError", "KeyError", "TypeError", "RuntimeError"})
VALIDATOR_WRAPPERS = frozenset({"AfterValidator", "BeforeValidator", "PlainValidator"})
VALIDATOR_DECORATORS = frozenset({"field_validator", "model_validator"})
# (module, function): true internal invariants, a misuse by the code itself, never reachable
# from data or options; a bug there must keep its traceback.
INTERNAL_INVARIANTS = frozenset(
    {
        ("meterflow/orchestration/lock.py", "acquire"),  # a RunLock taken twice by one holder
        ("meterflow/orchestration/lock.py", "update"),  # updating a lock not held
        ("meterflow/schemas.py", "_dtype_matches"),  # a table contract with an unknown dtype
        ("meterflow/forecasting/base.py", "network_inputs"),  # asked of a non-network model
        ("meterflow/forecasting/combine.py", "fit"),  # a combination is built, never fitted
        ("meterflow/anomaly/calibration.py", "calibrate"),  # called with neither window nor data
        ("meterflow/series/windows.py", "model_inputs"),  # time features without their index
        ("meterflow/orchestration/steps.py", "check_table"),  # a step table in a wrong order
        ("meterflow/settings/pipeline.py", "pipeline_fields"),  # steps declaring two defaults
    }
)


def _name(node: ast.expr) -> str:
    """``f`` for ``f``, ``a.f`` and ``f(...)``; '' for anything else."""
    if isinstance(node, ast.Call):
        return _name(node.func)
    if isinstance(node, ast.Attribute):
        return node.attr
    return node.id if isinstance(node, ast.Name) else ""


def _modules() -> dict[str, ast.Module]:
    return {
        str(path.relative_to(REPO)): ast.parse(path.read_text(), str(path))
        for path in sorted(PACKAGE.rglob("*.py"))
    }


def validator_names(modules: dict[str, ast.Module]) -> set[str]:
    """Names of the functions and classes pydantic calls as validators, and of the functions
    of the same module they call (whose ValueError pydantic catches as well)."""
    names: set[str] = set()
    for tree in modules.values():
        for node in ast.walk(tree):
            if isinstance(node, ast.Call) and _name(node.func) in VALIDATOR_WRAPPERS:
                names |= {_name(n) for arg in node.args for n in ast.walk(arg)} - {""}
            if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and any(
                _name(d) in VALIDATOR_DECORATORS for d in node.decorator_list
            ):
                names.add(node.name)
    for tree in modules.values():
        defs = {n.name: n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.ClassDef)}
        todo = [n for n in names if n in defs]
        while todo:
            for node in ast.walk(defs[todo.pop()]):
                called = _name(node.func) if isinstance(node, ast.Call) else ""
                nested = node.name if isinstance(node, ast.FunctionDef | ast.ClassDef) else ""
                for name in (called, nested):
                    if name in defs and name not in names:
                        names.add(name)
                        todo.append(name)
    return names


def _caught_here(raised: str, chain: list[ast.AST]) -> bool:
    """Whether a ``try`` of the innermost function around the raise catches ``raised``."""
    for parent, child in zip(chain[1:], chain[:-1], strict=False):
        if isinstance(parent, ast.FunctionDef | ast.AsyncFunctionDef | ast.Lambda):
            return False
        if isinstance(parent, ast.Try) and child in parent.body:
            for handler in parent.handlers:
                kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
                if {"Exception", raised} & {_name(k) if k else "Exception" for k in kinds}:
                    return True
    return False


def bare_raises(modules: dict[str, ast.Module]) -> Iterator[tuple[str, int, str, str]]:
    """(module, line, function, exception) of each bare raise that can escape to the handler."""
    validators = validator_names(modules)
    for path, tree in modules.items():
        uses_pydantic = any(
            isinstance(n, ast.ImportFrom) and (n.module or "").startswith("pydantic")
            for n in ast.walk(tree)
        )
        parents = {c: p for p in ast.walk(tree) for c in ast.iter_child_nodes(p)}
        for node in ast.walk(tree):
            if not isinstance(node, ast.Raise) or _name(node.exc) not in BARE:
                continue
            raised, chain = _name(node.exc), [node]
            while chain[-1] in parents:
                chain.append(parents[chain[-1]])
            functions = [n.name for n in chain if isinstance(n, ast.FunctionDef | ast.ClassDef)]
            function = functions[0] if functions else "<module>"
            in_validator = uses_pydantic and bool(validators & set(functions))
            if (raised == "ValueError" and in_validator) or _caught_here(raised, chain):
                continue
            if (path, function) not in INTERNAL_INVARIANTS:
                yield path, node.lineno, function, raised


def test_no_bare_builtin_error_escapes_the_one_line_handler() -> None:
    found = [f"{p}:{line} {fn}: raise {exc}" for p, line, fn, exc in bare_raises(_modules())]
    assert not found, "raise a MeterflowError subclass (e.g. InputError):\n" + "\n".join(found)


def test_the_invariants_allowed_still_exist() -> None:
    """The allow-list names only functions that exist and still raise a bare error."""
    modules = _modules()
    for path, function in INTERNAL_INVARIANTS:
        assert path in modules, path
        defs = [n for n in ast.walk(modules[path]) if getattr(n, "name", None) == function]
        raises = [n for d in defs for n in ast.walk(d) if isinstance(n, ast.Raise)]
        assert any(_name(r.exc) in BARE for r in raises), (path, function)


SAMPLE = """
from pydantic import AfterValidator, BaseModel, model_validator

def _check_name(v):
    if not v:
        raise ValueError("empty")
    return v

class Params(BaseModel):
    name: Annotated[str, AfterValidator(_check_name)]

    @model_validator(mode="after")
    def _check(self):
        raise ValueError("validator")

def parse(x):
    try:
        raise ValueError(x)
    except (TypeError, ValueError):
        return None

def load(x):
    if x is None:
        raise KeyError(x)
    try:
        return int(x)
    except TypeError:
        raise RuntimeError("escapes") from None
"""


def test_the_scan_passes_validators_and_local_catches_and_finds_the_rest() -> None:
    found = list(bare_raises({"meterflow/sample.py": ast.parse(SAMPLE)}))
    assert [(fn, exc) for _, _, fn, exc in found] == [
        ("load", "KeyError"),
        ("load", "RuntimeError"),
    ]
    assert {"OneOf", "__call__"} <= validator_names(_modules())


def test_input_error_is_a_value_error_and_a_one_line_failure() -> None:
    stamps = pd.Series(pd.to_datetime(["2024-01-01 00:00"]).tz_localize("UTC"))
    with pytest.raises(InputError) as caught:
        naive_times(stamps, "start")
    assert isinstance(caught.value, ValueError) and isinstance(caught.value, MeterflowError)
    assert failure_reason(caught.value) == "alert 'start' must be naive (the series' local clock)"


def reject_zoned_stamps(options: object, env: object) -> None:
    """A task that hands the alert store time-zone-aware stamps, which it rejects."""
    naive_times(pd.Series(pd.to_datetime(["2024-01-01"]).tz_localize("UTC")), "start")


def test_an_input_error_of_a_step_ends_as_one_line_and_exit_code_2(tmp_path: Path) -> None:
    """A step whose code rejects its data with InputError: ``error: <step>: <reason>`` alone on
    stderr (no traceback) and exit code 2, through the entry points' own ``run_entry``."""
    code = (
        "import dataclasses, sys\n"
        "from meterflow.cli import run_entry\n"
        "from meterflow.entrypoints import ENTRY_POINTS\n"
        "task = 'tests.test_errors_reach_handler:reject_zoned_stamps'\n"
        "ENTRY_POINTS['anomaly'] = dataclasses.replace(ENTRY_POINTS['anomaly'], task=task)\n"
        "sys.exit(run_entry('anomaly', []))\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=120,
        env=subprocess_env(METERFLOW_DATA_DIR=str(tmp_path)),
    )
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and "Traceback" not in out.stderr, out.stderr
    assert errors == ["error: anomaly: alert 'start' must be naive (the series' local clock)"]
