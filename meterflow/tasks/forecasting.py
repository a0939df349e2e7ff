"""The ``forecasting`` step: LSTM or hybrid LSTM+CNN forecasts of each meter's load, scored on a
chronological test split against persistence, seasonal-naive, linear and climatology baselines
(never tuned on the test split)."""

from __future__ import annotations

from meterflow import tracking
from meterflow.config import AnomalyOptions, Environment, ForecastingOptions, lstm_units
from meterflow.forecasting.settings import ForecastSettings
from meterflow.forecasting.train import train_forecaster
from meterflow.schemas import Table


def log_history(run: tracking.StepRun, history) -> None:
    """Per-epoch training and validation loss as metric series (the MLflow UI plots them)."""
    for epoch, (train, val) in enumerate(zip(history.train_loss, history.val_loss, strict=False)):
        run.log_metrics({"train_loss": train, "val_loss": val}, step=epoch + 1)


def forecast_settings(
    opts: ForecastingOptions | AnomalyOptions, **fixed: object
) -> ForecastSettings:
    """The forecaster's settings from the options both the forecasting and the anomaly step
    take (window, horizon, training), plus ``fixed`` ones."""
    return ForecastSettings(
        seq_length=opts.seq_length,
        horizon=opts.horizon,
        epochs=opts.epochs,
        units=lstm_units(opts.units),
        max_train_windows=opts.max_train_windows,
        threads=opts.threads,
        seed=opts.seed,
        **fixed,
    )


def run_forecasting(opts: ForecastingOptions, env: Environment) -> str:
    tracking.configure(env)
    settings = forecast_settings(opts, model=opts.model, test_padding=opts.padding)
    with tracking.step_run("forecasting", opts) as run:
        source_run = tracking.resolve_run(opts.profiles_run, "harmonization")
        run.set_tags({"input.profiles_run": source_run})
        profiles = tracking.load_table(source_run, Table.PROFILES_ENERGY)
        meters = tracking.load_table(source_run, Table.METERS)
        result = train_forecaster(profiles, meters, settings)
        run.log_metrics(result.metrics)
        log_history(run, result.history)
        run.set_tags({"forecasting.best_baseline": result.best_baseline})
        run.log_table(result.predictions, Table.TEST_PREDICTIONS)
        run.log_table(result.holdout, Table.HOLDOUT)
        for name, fig in result.figures.items():
            run.log_figure(fig, name)
        run.log_model(result.predictor)
        return run.run_id
