"""The user-facing parameters of the forecasting step, declared once (``ForecastSettings`` takes
its defaults from here)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import AfterValidator, Field, model_validator

from meterflow.params import OneOf, Params, Seed, SeqLength, Threads, check_names, units_param


def forecast_models() -> tuple[str, ...]:
    from meterflow.forecasting.registry import model_names

    return model_names()


def forecasters() -> tuple[str, ...]:
    from meterflow.forecasting.registry import FORECASTERS

    return tuple(FORECASTERS)


def _check_quantiles(v: str) -> str:
    if not v.strip():
        return ""
    try:
        q = [float(p) for p in v.split(",")]
    except ValueError:
        raise ValueError("must be numbers separated by commas, e.g. 0.1,0.5,0.9") from None
    if 0.5 not in q or q != sorted(set(q)) or not all(0 < x < 1 for x in q):
        raise ValueError("must be increasing, in (0, 1) and include 0.5, e.g. 0.1,0.5,0.9")
    return ",".join(f"{x:g}" for x in q)


def forecast_quantiles(value: str) -> tuple[float, ...]:
    """A parameter ``quantiles`` (``"0.1,0.5,0.9"``, ``""`` = point forecast) as a tuple."""
    return tuple(float(p) for p in value.split(",")) if value else ()


class ForecastingParams(Params):
    """What is forecast, by which model, and how the networks train."""

    scope: Literal["meter", "cluster", "fleet"] = Field(
        "meter", description="forecast each meter, cluster total or fleet total"
    )
    model: Annotated[str, AfterValidator(OneOf(forecast_models))] = Field(
        "auto", description="forecaster, or auto: the best candidate or combination on validation"
    )
    candidates: Annotated[str, AfterValidator(check_names(forecasters))] = Field(
        "lstm", description="forecasters model=auto tries beside every baseline (e.g. lstm,hybrid)"
    )
    seq_length: SeqLength
    horizon: int = Field(0, ge=0, description="slots ahead (0 = one day at the series' resolution)")
    output: Literal["all", "last"] = Field(
        "all", description="predict every slot 1..horizon, or only the last"
    )
    quantiles: Annotated[str, AfterValidator(_check_quantiles)] = Field(
        "0.1,0.5,0.9", description="forecast quantiles with 0.5 ('' = point forecast on the MSE)"
    )
    origin_hour: int = Field(
        -1, ge=-1, le=23, description="evaluate forecasts made at this hour (-1 = every slot)"
    )
    padding: Literal["history", "zeros"] = Field(
        "history", description="start of the test stream: real history or zero pre-padding"
    )
    # at most 20 epochs, the learning rate halved on plateaus (11 public series: validation MAE /
    # seasonal naive week 0.679 -> 0.672 against 40 epochs at a constant rate; demo fleet:
    # validation loss 0.1303 at epoch 20 against 0.1308 at epoch 24 of 29)
    epochs: int = Field(
        20, gt=0, description="forecaster training epochs (early stopping on validation)"
    )
    units: units_param("64")  # best validation loss on public demand series
    # demo: test MAE 419 -> 423 Wh, 3x faster than 100k
    max_train_windows: int = Field(30_000, gt=0, description="cap on sampled training windows")
    threads: Threads
    seed: Seed

    @model_validator(mode="after")
    def _check_forecasting(self) -> ForecastingParams:
        if not self.candidates:
            raise ValueError("candidates must name at least one forecaster")
        return self
