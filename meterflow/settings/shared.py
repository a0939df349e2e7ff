"""The base of the entry points' options and the option types only entry points have."""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import Annotated, Any, ClassVar, Literal, get_args, get_origin

from pydantic import AfterValidator, BaseModel, Field, model_validator

from meterflow.errors import ConfigError
from meterflow.params import OneOf, Params, check_timezone


class Options(Params):
    """Base of the entry points' options. ``renamed`` maps an option's old name to its new one:
    the old name is refused with a message naming the new one."""

    renamed: ClassVar[Mapping[str, str]] = {}

    @classmethod
    def refuse_renamed(cls, names: Iterable[str]) -> None:
        """Raise a one-line ConfigError for the first of ``names`` that was renamed."""
        for name in names:
            if name in cls.renamed:
                new = cls.renamed[name]
                raise ConfigError(
                    f"option {name} was renamed {new}: `-P {name}=...` is now `-P {new}=...`"
                )

    @model_validator(mode="before")
    @classmethod
    def _refuse_renamed(cls, data: Any) -> Any:
        if isinstance(data, Mapping):
            cls.refuse_renamed(data)
        return data


def _check_dask_address(v: str) -> str:
    if v and not re.fullmatch(r"(tcp|tls|ucx|ws|wss|inproc)://\S+", v):
        raise ValueError(f"expected a Dask scheduler address such as tcp://host:8786, got {v!r}")
    return v


def _check_utc_time(v: str) -> str:
    if v not in ("", "watermark", "all"):
        _parse_utc(v)
    return v


HistorianTimezone = Annotated[
    str,
    AfterValidator(check_timezone),
    Field(
        "UTC",
        description="time zone of the SQL historian's naive timestamps (UTC unless the historian "
        "writes local wall-clock time, e.g. Europe/Rome: converted across DST, the repeated "
        "autumn hour placed by row order)",
    ),
]
UtcTime = Annotated[str, AfterValidator(_check_utc_time)]
DaskScheduler = Annotated[
    str,
    AfterValidator(_check_dask_address),
    Field(
        "",
        description="Dask scheduler for per-meter work and DTW rows (tcp://host:8786; '' = here)",
    ),
]
RunId = Annotated[str, Field("", description="harmonization run id ('' = latest finished)")]
Fingerprint = Annotated[str, Field("", description="set by the pipeline to detect new data")]


def choices(model: type[BaseModel], name: str) -> tuple[str, ...]:
    """The allowed values of an option with a fixed set of choices (empty tuple otherwise)."""
    field = model.model_fields[name]
    for meta in field.metadata:
        if isinstance(getattr(meta, "func", None), OneOf):
            return meta.func.choices()
    if get_origin(field.annotation) is Literal:
        return tuple(str(v) for v in get_args(field.annotation))
    return ()


def _parse_utc(value: str):
    import pandas as pd

    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as e:
        raise ValueError(f"not an ISO time: {value!r}") from e
    return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")


def parse_utc(value: str):
    """An ISO time string as a UTC ``pd.Timestamp`` (naive input is taken as UTC)."""
    try:
        return _parse_utc(value)
    except ValueError as e:
        raise ConfigError(str(e)) from e
