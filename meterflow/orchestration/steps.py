"""The pipeline's steps, one row each, in the order they start: what each takes as inputs, what
may run beside it, whether its model is promoted. The runner (``meterflow.orchestration.pipeline``)
walks this table; adding a step is adding a row (and its entry point, ``meterflow.entrypoints``).

Stages run in order. In a stage, the steps of one lane run one after the other (a chain) and the
lanes run at the same time: the MongoDB chain (load, then clean) beside the history chain
(historian, then the old exports checked against it), since they share no input. A memory-bound
stage runs its lanes together only as far as the memory available holds their last peaks
(``runner.memory_groups``): the three model steps.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

from meterflow.settings import Environment, PipelineOptions
from meterflow.sources.registry import etl_step, source_class, source_names


@dataclass(frozen=True)
class Step:
    """One row of the table."""

    name: str  # its entry point
    stage: int  # stages run in order
    lane: str = ""  # in its stage, steps of one lane run in table order ("": a lane of its own)
    # option -> the steps whose run ids it takes (joined by commas)
    upstream: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    fingerprint: Callable[[Environment], str] | None = None  # its source's, as source_fingerprint
    carry_over: str = ""  # option given its own newest finished run (never a reason to rerun)
    found: Callable[[PipelineOptions, Environment], Mapping[str, str]] | None = None  # e.g. files
    memory_bound: bool = False  # its stage's lanes run together as far as memory allows
    promoted: bool = False  # its new model is registered and may become champion

    @property
    def reuse_ignores(self) -> tuple[str, ...]:
        """Params that do not take part in its reuse key."""
        return (self.carry_over,) if self.carry_over else ()


def _demo_labels(opts: PipelineOptions, env: Environment) -> dict[str, str]:
    """The demo fleet's planted anomalies, when the run builds the demo and they exist."""
    labels = env.truth_dir / "anomalies.csv"
    return {"labels": str(labels) if opts.demo and labels.is_file() else ""}


def source_steps() -> tuple[Step, ...]:
    """The ETL rows, one chain per registered source (``meterflow.sources.registry``): its load
    step first where it has one (the ETL takes its ``raw_run``), in the lane of the source whose
    profiles anchor its scale detection (``reference_run``), its store's fingerprint on the step
    that reads the store first."""
    rows: list[Step] = []
    for name in source_names():
        source = source_class(name)
        reference = source.reference_source
        lane = reference or name
        if source.load_step:
            rows.append(Step(source.load_step, 0, lane, fingerprint=source.fingerprint))
            rows.append(Step(etl_step(name), 0, lane, upstream={"raw_run": (source.load_step,)}))
        else:
            upstream = {"reference_run": (etl_step(reference),)} if reference else {}
            rows.append(Step(etl_step(name), 0, lane, upstream, fingerprint=source.fingerprint))
    return tuple(rows)


def etl_runs() -> tuple[str, ...]:
    """The ETL steps, one per registered source, in priority order."""
    return tuple(etl_step(name) for name in source_names())


PROFILES = {"profiles_run": ("harmonization",)}
MODEL_STEPS = (
    Step("clustering", 2, upstream=PROFILES, memory_bound=True, promoted=True),
    Step("forecasting", 2, upstream=PROFILES, memory_bound=True, promoted=True),
    Step("anomaly", 2, upstream=PROFILES, found=_demo_labels, memory_bound=True, promoted=True),
)
PROMOTED = tuple(s.name for s in MODEL_STEPS if s.promoted)


def pipeline_steps() -> tuple[Step, ...]:
    """The whole table: the registered sources' chains, harmonization, the model steps."""
    harmonization = Step(
        "harmonization", 1, upstream={"etl_runs": etl_runs()}, carry_over="previous_run"
    )
    return (*source_steps(), harmonization, *MODEL_STEPS)


Lane = list[Step]


def stages(steps: Sequence[Step] | None = None) -> list[list[Lane]]:
    """The steps (default: the pipeline's) as stages in order, each a list of lanes in the order
    they first appear."""
    by_stage: dict[int, dict[str, Lane]] = {}
    for step in pipeline_steps() if steps is None else steps:
        by_stage.setdefault(step.stage, {}).setdefault(step.lane or step.name, []).append(step)
    return [list(by_stage[s].values()) for s in sorted(by_stage)]


def check_table(steps: Sequence[Step] | None = None) -> None:
    """ValueError unless each step's upstream steps (default: the pipeline's) finish before it
    starts: in an earlier stage, or earlier in its own lane."""
    seen: dict[str, Step] = {}
    for step in pipeline_steps() if steps is None else steps:
        for option, names in step.upstream.items():
            for name in names:
                before = seen.get(name)
                ready = before is not None and (
                    before.stage < step.stage
                    or (before.stage == step.stage and before.lane == step.lane != "")
                )
                if not ready:
                    raise ValueError(f"{step.name}: {option} takes {name}, not finished by then")
        seen[step.name] = step
