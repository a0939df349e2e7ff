"""docs/ is true: every ``console`` example runs and prints what the page shows, the site builds.

The examples run page by page in mkdocs.yml's order in one shell, in a throwaway copy of the
repository (what a fresh clone holds) that shares this checkout's virtual environment, so the
pages build on each other as they do for a reader: getting-started runs ``make demo``, later
pages read its runs. Background commands (``make serve … &``) are stopped at the end.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from meterflow.sources.mongo_server import free_port
from tests.conftest import REPO, repo_copy, subprocess_env
from tests.docs.examples import Shell, examples, fences, matches, nav_pages

PAGES = nav_pages(REPO)
DOCS = REPO / "docs"
PORTS = ("5000", "5001", "5002")  # the ports the pages show, each mapped to a free one here
COMMAND_TIMEOUT_S = 600  # `make demo` is the longest command
BUDGET_S = 12 * 60  # every example of every page, `make demo` included, on 2 cores
READER_UNSET = (  # a reader's fresh shell has none of these: the pages' defaults apply
    "MLFLOW_TRACKING_URI", "MLFLOW_EXPERIMENT_NAME", "METERFLOW_DATA_DIR", "MONGODB_URI",
    "METERFLOW_SQL_URL", "METERFLOW_REGISTRY_PREFIX", "VIRTUAL_ENV",
    "MAKELEVEL", "MAKEFLAGS", "MFLAGS",  # under `make test`: a nested make says where it is
)  # fmt: skip
SHELL_FENCES = {"bash", "sh", "shell", "zsh"}


def _venv(copy: Path) -> None:
    """The copy's .venv: this checkout's interpreter and packages, installed as of now (so
    `make` finds nothing to install)."""
    venv, real = copy / ".venv", REPO / ".venv"
    venv.mkdir()
    for name in ("bin", "lib", "include", "lib64"):
        if (real / name).exists():
            (venv / name).symlink_to(real / name)
    (venv / "pyvenv.cfg").write_text((real / "pyvenv.cfg").read_text())
    (venv / ".installed").touch()
    then = time.time() - 60
    for name in ("pyproject.toml", "constraints.txt"):
        os.utime(copy / name, (then, then))


@pytest.fixture(scope="module")
def shell(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Shell]:
    copy = repo_copy(tmp_path_factory.mktemp("clone"))
    _venv(copy)
    env = subprocess_env(HOME=str(copy / ".home"), PYTHONUNBUFFERED="1", COLUMNS="80")
    for name in READER_UNSET:
        env.pop(name, None)
    env["PATH"] = f"{copy / '.venv' / 'bin'}:{env['PATH']}"
    (copy / ".home").mkdir()
    session = Shell(copy, env, {port: str(free_port()) for port in PORTS})
    yield session
    session.close()


@pytest.mark.slow
@pytest.mark.timeout(BUDGET_S + 120)
@pytest.mark.parametrize("page", PAGES)
def test_page_examples_print_what_the_page_shows(page: str, shell: Shell) -> None:
    text = (DOCS / page).read_text()
    for fence in fences(page, text):
        if fence.language != "console":
            continue
        for example in examples(fence):
            rc, out = shell.run(example, COMMAND_TIMEOUT_S)
            where = f"{page}:{example.line}: `{example.command}`"
            assert rc == 0, f"{where} exited {rc}:\n{out}"
            assert matches(example.expected, out), (
                f"{where} printed\n{out}\n--- the page shows ---\n" + "\n".join(example.expected)
            )
    assert time.monotonic() - shell.started < BUDGET_S, "the docs' examples ran past 12 min"


def test_every_shell_block_is_executed_or_says_why_not() -> None:
    refused = []
    for page in sorted(p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")):
        for fence in fences(page, (DOCS / page).read_text()):
            prompts = any(line.startswith("$ ") for line in fence.body.split("\n"))
            shell_like = fence.language in SHELL_FENCES or (fence.language == "" and prompts)
            if shell_like and not fence.not_executed:
                refused.append(f"{page}:{fence.line}: ```{fence.language}")
    assert not refused, "use ```console (executed) or a `<!-- not executed: why -->` line:\n" + (
        "\n".join(refused)
    )


def test_every_page_is_in_the_nav() -> None:
    pages = {p.relative_to(DOCS).as_posix() for p in DOCS.rglob("*.md")}
    assert pages == set(PAGES)


def test_the_site_builds_strictly(tmp_path: Path) -> None:
    out = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(tmp_path / "site")],
        cwd=REPO, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert (tmp_path / "site" / "index.html").is_file()


@pytest.mark.parametrize(
    ("expected", "actual", "fits"),
    [
        (["a", "b"], "a\nb\n", True),
        (["a", "..."], "a\nb\nc", True),
        (["...", "c"], "c\n", True),
        (["x = ..."], "x = 3.14\n", True),
        (["x = 3"], "x = 3.14\n", False),
        (["a"], "a\nb\n", False),
        ([], "", True),
    ],
)
def test_ellipsis_matching(expected: list[str], actual: str, fits: bool) -> None:
    assert matches(expected, actual) is fits
