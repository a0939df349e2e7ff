"""The layering rules of ARCHITECTURE.md, checked on the source: the pure packages take tables
and arrays and return them; they never reach a store, MLflow, the environment or the files."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "meterflow"
PURE = ("etl", "profiles", "clustering", "forecasting", "anomaly", "series", "nets")
FORBIDDEN_IMPORTS = (
    "meterflow.sources",
    "meterflow.tracking",
    "meterflow.orchestration",
    "meterflow.models",
    "meterflow.settings",
    "meterflow.cli",
    "meterflow.tasks",
    "mlflow",
    "sqlalchemy",
    "pymongo",
    "pymongoarrow",
)
# Calls that read or write files (or the environment), by attribute or function name.
IO_ATTRIBUTES = {
    "environ", "getenv", "read_text", "write_text", "read_bytes", "write_bytes", "to_parquet",
    "read_parquet", "to_csv", "read_csv", "savefig", "mkdir", "unlink", "rmdir", "fsync",
}  # fmt: skip
IO_FUNCTIONS = {"open"}
IO_MODULE_CALLS = {("np", "load"), ("np", "save"), ("np", "savez"), ("shutil", "copy")}


def _pure_modules() -> list[Path]:
    return sorted(p for pkg in PURE for p in (PACKAGE / pkg).rglob("*.py"))


def _imported(tree: ast.AST, module: str) -> list[str]:
    names = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names += [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: resolve against the module's package
                parts = module.split(".")[: -node.level]
                base = ".".join([*parts, base] if base else parts)
            names.append(base)
            names += [f"{base}.{alias.name}" for alias in node.names]
    return names


def _io_calls(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr in IO_ATTRIBUTES:
            found.append(f".{node.attr} (line {node.lineno})")
        called = node.func if isinstance(node, ast.Call) else None
        if isinstance(called, ast.Name) and called.id in IO_FUNCTIONS:
            found.append(f"{called.id}() (line {node.lineno})")
        owner = node.value if isinstance(node, ast.Attribute) else None
        if isinstance(owner, ast.Name) and (owner.id, node.attr) in IO_MODULE_CALLS:
            found.append(f"{owner.id}.{node.attr} (line {node.lineno})")
    return found


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_module_imports_no_adapter_seam_or_config(path: Path) -> None:
    module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    tree = ast.parse(path.read_text(), filename=str(path))
    bad = [
        name
        for name in _imported(tree, module)
        if any(name == f or name.startswith(f + ".") for f in FORBIDDEN_IMPORTS)
    ]
    assert not bad, f"{module} imports {sorted(set(bad))}"


@pytest.mark.parametrize("path", _pure_modules(), ids=lambda p: str(p.relative_to(PACKAGE)))
def test_pure_module_does_no_file_io_and_reads_no_environment(path: Path) -> None:
    tree = ast.parse(path.read_text(), filename=str(path))
    assert not _io_calls(tree), f"{path.relative_to(PACKAGE)}: {_io_calls(tree)}"


def test_only_the_seam_and_the_model_wrappers_import_mlflow() -> None:
    allowed = {
        "meterflow.tracking.__init__",
        "meterflow.tracking.registry",
        "meterflow.tracking.artifacts",
        "meterflow.tracking.models",
        "meterflow.models.pyfunc",
        "meterflow.models.predictor_model",
    }
    offenders = []
    for path in PACKAGE.rglob("*.py"):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        names = _imported(ast.parse(path.read_text()), module)
        if module not in allowed and any(n == "mlflow" or n.startswith("mlflow.") for n in names):
            offenders.append(module)
    assert not offenders, f"import mlflow outside the seam: {offenders}"


def _forecasting_internals(names: list[str]) -> list[str]:
    """The names of ``names`` inside ``meterflow.forecasting`` other than its public ones."""
    import meterflow.forecasting as forecasting

    public = {"meterflow.forecasting", *(f"meterflow.forecasting.{n}" for n in forecasting.__all__)}
    return [n for n in names if n.startswith("meterflow.forecasting.") and n not in public]


def test_the_anomaly_family_imports_no_forecasting_internals() -> None:
    """Anomaly detectors share the fleet series and the Keras loop through neutral packages
    (``meterflow.series``, ``meterflow.nets``), and reach a forecaster through the forecasting
    package's public names only."""
    offenders = {}
    for path in sorted((PACKAGE / "anomaly").rglob("*.py")):
        module = ".".join(path.relative_to(PACKAGE.parent).with_suffix("").parts)
        bad = _forecasting_internals(_imported(ast.parse(path.read_text()), module))
        if bad:
            offenders[module] = sorted(set(bad))
    assert offenders == {}
    caught = _imported(ast.parse("from meterflow.forecasting.series import x"), "m")
    assert _forecasting_internals(caught) == caught


def test_the_checker_sees_a_violation(tmp_path: Path) -> None:
    """The rules are not vacuous: a module that breaks each of them is caught."""
    source = (
        "import os\nfrom meterflow.sources import sql\nfrom ..settings import Environment\n"
        "x = os.environ['A']\nopen('f').read()\nimport numpy as np\nnp.load('x.npy')\n"
    )
    tree = ast.parse(source)
    names = _imported(tree, "meterflow.etl.bad")
    assert "meterflow.sources" in names and "meterflow.settings" in names
    assert len(_io_calls(tree)) == 3
