"""How a step declares its user-facing parameters: once, with default, check and help.

Each pure package holds one ``Params`` class (``meterflow.etl.params``, ``profiles.params``,
``clustering.params``, ``forecasting.params``, ``anomaly.params``); the pure code reads its
defaults from it (:meth:`Params.default`), and the entry points' options, their ``--help``,
``MLproject`` and the pipeline's namespaced options are generated from it
(``meterflow.settings``). This module holds the base class, the checks and the parameter types
shared by several steps. It does no I/O and imports no numerical library, so ``--help`` and
option errors are instant; choices read from a registry are read when a value is checked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from typing import Annotated, Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from meterflow import domain


class Params(BaseModel):
    """Typed parameters: unknown names are errors, values are checked and frozen."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    @classmethod
    def default(cls, name: str) -> Any:
        """The declared default of parameter ``name``."""
        return cls.model_fields[name].default

    def params(self) -> dict[str, str]:
        """The values as MLflow params (strings; booleans as true/false)."""
        out = {}
        for k, v in self.model_dump().items():
            out[k] = str(v).lower() if isinstance(v, bool) else ("" if v is None else str(v))
        return out


@dataclass(frozen=True)
class OneOf:
    """Check that a value is one of the names a registry lists (read when checked)."""

    choices: Callable[[], tuple[str, ...]]

    def __call__(self, value: str) -> str:
        names = self.choices()
        if value not in names:
            raise ValueError(f"must be one of {', '.join(names)}")
        return value


def column_names(value: str) -> tuple[str, ...]:
    """The names of a comma-separated list parameter (``''`` = none)."""
    return tuple(x.strip() for x in value.split(",") if x.strip())


def check_names(choices: Callable[[], tuple[str, ...]]) -> Callable[[str], str]:
    """A check of comma-separated names, each one of ``choices()`` (``''`` = none)."""

    def check(v: str) -> str:
        names = column_names(v)
        for name in names:
            OneOf(choices)(name)
        return ",".join(names)

    return check


def lstm_units(value: str) -> tuple[int, ...]:
    """A parameter ``units`` (``"50,25,10"``) as the tuple the models take."""
    return tuple(int(p) for p in value.split(","))


def _check_units(v: str) -> str:
    parts = [p.strip() for p in v.split(",") if p.strip()]
    if not parts or not all(p.isdigit() and int(p) > 0 for p in parts):
        raise ValueError("must be positive integers separated by commas, e.g. 50,25,10")
    return ",".join(parts)


def units_param(default: str) -> Any:
    """A parameter ``units`` with ``default`` (e.g. ``"50,25,10"``)."""
    return Annotated[
        str,
        AfterValidator(_check_units),
        Field(
            default,
            description="units of the stacked LSTM layers, first layer first (e.g. 50,25,10)",
        ),
    ]


def _check_resolution(v: int) -> int:
    if v <= 0 or domain.MINUTES_PER_DAY % v:
        raise ValueError(f"must divide a day ({domain.MINUTES_PER_DAY} min), got {v}")
    return v


def check_timezone(v: str) -> str:
    """A time zone name the zoneinfo database knows."""
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError) as e:
        raise ValueError(f"unknown timezone {v!r}") from e
    return v


def check_date(v: str) -> str:
    """A date YYYY-MM-DD, or ``''``."""
    if v:
        try:
            return date.fromisoformat(v.strip()).isoformat()
        except ValueError:
            raise ValueError(f"must be a date YYYY-MM-DD, got {v!r}") from None
    return v


Resolution = Annotated[
    int,
    AfterValidator(_check_resolution),
    Field(60, description="profile resolution in minutes (divides a day)"),
]
Timezone = Annotated[
    str,
    AfterValidator(check_timezone),
    Field(domain.LOCAL_TIMEZONE, description="local timezone of the meter-days"),
]
# 30 slots, as the IoT LSTM prediction notebook (seed 002)
SeqLength = Annotated[int, Field(30, gt=1, description="input window length (slots)")]
# small LSTMs train fastest on one thread
Threads = Annotated[int, Field(1, gt=0, description="TensorFlow CPU threads of this step")]
Seed = Annotated[int, Field(42, description="random seed")]
