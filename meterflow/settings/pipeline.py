"""The ``main`` and ``retrain`` options, generated from the steps' parameters.

Every parameter of a step's ``Params`` class (``meterflow.<package>.params``) is a pipeline
option, named with the step's prefix in :data:`FORWARDED` (``cluster_model``,
``forecast_epochs``, ``anomaly_epochs``); steps without a prefix share their names (the ETL
steps' and harmonization's ``resolution``). :func:`step_options` builds a child's options from
the pipeline's. Adding a parameter to a step's ``Params`` class therefore adds the step's option,
its ``--help`` line, its ``MLproject`` parameter and the pipeline's option, forwarded.
"""

from __future__ import annotations

from copy import copy
from typing import Any, ClassVar

from pydantic import Field, ValidationError, create_model, model_validator
from pydantic.fields import FieldInfo

from meterflow.params import Params, Seed
from meterflow.settings.shared import Options
from meterflow.settings.steps import source_of_generic_etl, step_options_class

# The settings the pipeline forwards to its children, in ONE table. step: (prefix of its
# options in the pipeline, entry-point fields forwarded beside the step's parameters, which are
# forwarded whole: the ``Params`` class its options are composed of, see :func:`step_params`).
FORWARDED: dict[str, tuple[str, tuple[str, ...]]] = {
    "etl_newmongo": ("", ()),
    "etl_sql": ("", ("historian_timezone",)),
    "etl_oldmongo": ("", ()),
    "harmonization": ("", ()),
    "clustering": ("cluster_", ()),
    "forecasting": ("forecast_", ()),
    "anomaly": ("anomaly_", ()),
}
# Entry-point fields forwarded, unprefixed, to every child that has them.
SHARED = ("dask_scheduler",)
# Old pipeline option names, refused with the new one.
RENAMED = {
    "model": "cluster_model",
    "distance_metric": "cluster_distance_metric",
    "number_of_clusters": "cluster_number_of_clusters",
    "prosumers": "cluster_prosumers",
    "epochs": "anomaly_epochs",
}


def step_params(step: str) -> type[Params]:
    """The parameters class (of a pure package) that the options of ``step`` are composed of."""
    bases = step_options_class(step).__mro__
    return next(b for b in bases if issubclass(b, Params) and not issubclass(b, Options))


def forwarded_names(step: str) -> dict[str, str]:
    """The pipeline option behind each option of child ``step`` that the pipeline sets."""
    prefix, extra = FORWARDED.get(step, ("", ()))
    forwards_params = step in FORWARDED or source_of_generic_etl(step)
    params = step_params(step) if forwards_params else Params
    names = {n: prefix + n for n in (*params.model_fields, *extra)}
    shared = {n: n for n in SHARED if n in step_options_class(step).model_fields}
    return names | shared


def _pipeline_field(step: str, name: str, prefixed: bool) -> tuple[Any, FieldInfo]:
    field = copy(step_options_class(step).model_fields[name])
    if prefixed:
        field.description = f"{step}: {field.description}"
    return field.annotation, field


def pipeline_fields() -> dict[str, tuple[Any, FieldInfo]]:
    """The generated pipeline options: type and field (default, check, help) of each."""
    fields: dict[str, tuple[Any, FieldInfo]] = {}
    for step in FORWARDED:
        for name, option in forwarded_names(step).items():
            new = _pipeline_field(step, name, option != name)
            if option in fields and fields[option][1].default != new[1].default:
                raise TypeError(f"pipeline option {option}: steps disagree on its default")
            fields.setdefault(option, new)
    return fields


class PipelineBase(Options):
    """The options only the pipeline has; the steps' options are added by
    :func:`pipeline_options_model`."""

    renamed: ClassVar[dict[str, str]] = RENAMED

    demo: bool = Field(True, description="build the demo fleet into the local stores if missing")
    demo_meters: int = Field(200, gt=0, description="meters in the demo fleet")
    demo_days: int = Field(365, gt=20, description="days of history in the demo fleet")
    demo_seed: Seed = Field(description="seed of the demo fleet")
    reuse: bool = Field(True, description="reuse finished runs whose inputs did not change")
    promote: bool = Field(
        True, description="register new models; champion only when better on held-out rows"
    )
    promotion_margin: float = Field(
        0.01, ge=0, description="relative improvement a new model needs to become champion"
    )
    start_over: bool = Field(
        False,
        description="run even when the tracking store does not know the data folder's last run "
        "(an empty or replaced store): start over from what the store holds",
    )

    @model_validator(mode="after")
    def _check_children(self) -> PipelineBase:
        """Each child's own checks (k_min <= k_max ...), before anything runs."""
        for step in FORWARDED:
            try:
                step_options(step, self)
            except ValidationError as e:
                err = e.errors()[0]
                where = ".".join(str(x) for x in err["loc"])
                option = forwarded_names(step).get(where, where)
                message = err["msg"].removeprefix("Value error, ")
                raise ValueError(f"{step}: {option + ': ' if option else ''}{message}") from None
        return self


def pipeline_options_model(name: str = "PipelineOptions") -> type[PipelineBase]:
    """The pipeline's options model: :class:`PipelineBase` and every forwarded step option."""
    return create_model(  # type: ignore[call-overload]
        name,
        __base__=PipelineBase,
        __module__=__name__,
        __doc__="Every step, chained as child runs of one parent run.",
        **pipeline_fields(),
    )


PipelineOptions = pipeline_options_model()


class RetrainOptions(PipelineOptions):  # type: ignore[misc,valid-type]
    """The nightly run: load new data, rerun what changed, promote only better models."""

    demo: bool = Field(False, description="build the demo fleet into the local stores if missing")


def step_options(step: str, opts: PipelineBase, **inputs: object) -> Options:
    """The options of the pipeline's child ``step``: the pipeline options forwarded to it
    (:data:`FORWARDED`, :data:`SHARED`) and ``inputs`` (run ids, fingerprints, files)."""
    values = {name: getattr(opts, option) for name, option in forwarded_names(step).items()}
    source = source_of_generic_etl(step)
    if source:
        values["source"] = source
    return step_options_class(step).model_validate(values | inputs)
