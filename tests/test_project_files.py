"""The project's declarations agree with the code: MLproject, conda.yaml, README, CI."""

from __future__ import annotations

import re
import subprocess
import sys
import tomllib

import pytest
import yaml

from meterflow.entrypoints import ENTRY_POINTS, render_mlproject
from tests.conftest import REPO


def test_mlproject_matches_options_models():
    assert (REPO / "MLproject").read_text() == render_mlproject(), (
        "MLproject is stale: regenerate with `python -m meterflow.entrypoints > MLproject`"
    )
    spec = yaml.safe_load((REPO / "MLproject").read_text())
    assert set(spec["entry_points"]) == set(ENTRY_POINTS)
    clustering = spec["entry_points"]["clustering"]["parameters"]
    assert clustering["number_of_clusters"] == {"type": "int", "default": 0}
    assert clustering["model"]["default"] == "kmedoids"
    for name in ("in_profiles", "label_column", "distance_metric"):
        assert name in clustering
    main = spec["entry_points"]["main"]["parameters"]
    assert main["cluster_model"]["default"] == "kmedoids"
    assert main["anomaly_epochs"] == {"type": "int", "default": 8}
    assert "model" not in main and "epochs" not in main
    for spec in ENTRY_POINTS.values():
        assert (REPO / spec.script).is_file(), spec.script


def test_conda_env_lists_the_pyproject_dependencies():
    deps = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    conda = yaml.safe_load((REPO / "conda.yaml").read_text())
    pip_section = next(d["pip"] for d in conda["dependencies"] if isinstance(d, dict))
    assert [d for d in pip_section if d != "-e ."] == deps


def test_readme_first_block_is_the_two_commands_and_ci_runs_the_second():
    readme = (REPO / "README.md").read_text()
    block = re.search(r"```[a-z]*\n(.*?)```", readme, re.S).group(1)
    commands = [line for line in block.splitlines() if line.strip()]
    assert commands == ["make demo", "make test"]
    ci = (REPO / ".ci" / "run").read_text()
    assert re.search(r"^make test$", ci, re.M)


@pytest.mark.parametrize(
    ("script", "args", "expected"),
    [
        ("steps/clustering.py", ["--number_of_clusters", "-1"], "number_of_clusters"),
        ("steps/clustering.py", ["--model", "dbscan"], "model"),
        ("harmonization.py", ["--compute_dtw", "maybe"], "compute_dtw"),
        ("etl_sql.py", ["--resolution", "7"], "resolution"),
        ("load_newmongo.py", ["--since", "last tuesday"], "since"),
        ("pipeline.py", ["--no_such_option", "1"], "unknown option"),
        ("pipeline.py", ["--model", "kmedoids"], "`-P model=...` is now `-P cluster_model=...`"),
        ("retrain.py", ["--epochs", "3"], "`-P epochs=...` is now `-P anomaly_epochs=...`"),
    ],
)
def test_bad_options_get_one_clear_line(script, args, expected):
    out = subprocess.run(
        [sys.executable, script, *args], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), out.stderr
    assert expected in lines[0]
    assert "Traceback" not in out.stderr


def test_results_notebook_reads_only_known_run_tables():
    import nbformat

    from meterflow.schemas import TABLES

    notebook = nbformat.read(REPO / "results.ipynb", as_version=4)
    nbformat.validate(notebook)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    names = re.findall(r"load_table\([^,]+,\s*\"(\w+)\"\)", code)
    assert names and set(names) <= set(TABLES)


def test_readme_is_a_front_page_whose_links_resolve():
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 120, "README.md is the front page: details go to docs/"
    links = re.findall(r"\]\(((?:docs/)[^)#]+)", readme)
    assert links and all((REPO / link).is_file() for link in links), links
