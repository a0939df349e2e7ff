"""Logged models are named for their family, each with a signature and an input example (Keras
networks too); a step's metrics belong to its family model only; an older run's ``model`` is
still found; a registered version and its registered model get descriptions."""

from __future__ import annotations

import logging
import time
import warnings
from collections.abc import Iterator
from contextlib import contextmanager

import mlflow
import numpy as np
import pandas as pd
import pytest
from mlflow.tracking import MlflowClient

from meterflow import tracking
from meterflow.errors import MeterflowError
from meterflow.etl import CleaningConfig
from meterflow.etl.predictor import DocumentsTranslator, ReadingsCleaner
from meterflow.models.pyfunc import log_predictor
from meterflow.profiles.predictor import ProfileNormalizer
from meterflow.schemas import slot_columns
from meterflow.tracking import registry

METERS = pd.DataFrame(
    {"meter_id": ["A"], "contractual_power_kw": [3.0], "production_kw": [2.0],
     "type": "household", "latitude": 0.0, "longitude": 0.0}
)  # fmt: skip
PREDICTORS = {
    "etl_sql": lambda: ReadingsCleaner(METERS, CleaningConfig(), "sql"),
    "load_newmongo": lambda: DocumentsTranslator(METERS, CleaningConfig()),
    "harmonization": lambda: ProfileNormalizer(60, "l2"),
}


@contextmanager
def step(entry_point: str) -> Iterator[tracking.StepRun]:
    with mlflow.start_run() as run:
        yield tracking.StepRun(run.info.run_id, run.info.experiment_id, entry_point)


def test_models_are_named_for_the_family_of_their_step() -> None:
    names = {e: tracking.model_name(e) for e in ("forecasting", "anomaly", "clustering")}
    assert names == {"forecasting": "forecaster", "anomaly": "detector", "clustering": "clusterer"}
    assert {tracking.model_name(f"etl_{s}") for s in ("sql", "newmongo", "oldmongo")} == {"cleaner"}
    assert tracking.model_name("load_newmongo") == "translator"
    assert tracking.model_name("harmonization") == "normalizer"
    assert tracking.model_name("anomaly", "network") == "detector_network"
    with pytest.raises(MeterflowError, match="'score' logs no model"):
        tracking.model_name("score")


@pytest.mark.parametrize("entry_point", sorted(PREDICTORS))
@pytest.mark.usefixtures("tracking")
def test_each_step_model_has_a_signature_and_an_example_and_serves_it(entry_point):
    predictor = PREDICTORS[entry_point]()
    with step(entry_point) as run:
        uri = run.log_model(predictor)
    info = mlflow.models.get_model_info(uri)
    assert info.signature is not None and info.signature.outputs is not None
    assert info.saved_input_example_info is not None
    assert mlflow.get_logged_model(info.model_id).name == tracking.model_name(entry_point)
    example = predictor.input_example()
    served = mlflow.pyfunc.load_model(uri).predict(example)
    pd.testing.assert_frame_equal(served, predictor.predict(example), check_dtype=False)


@pytest.mark.usefixtures("tracking")
def test_the_served_cleaner_keeps_the_optional_register_column():
    cleaner = PREDICTORS["etl_sql"]()
    rows = cleaner.input_example().assign(register="export")  # positive energy, exported
    with step("etl_sql") as run:
        served = mlflow.pyfunc.load_model(run.log_model(cleaner)).predict(rows)
    pd.testing.assert_frame_equal(served, cleaner.predict(rows), check_dtype=False)
    without = cleaner.predict(rows.drop(columns="register"))  # read as imported
    assert len(without) == 1 and served.empty  # the column was not dropped on the way in


@pytest.mark.usefixtures("tracking")
def test_the_served_normalizer_takes_finer_slots_than_its_own():
    normalizer = ProfileNormalizer(60, "l2")
    with step("harmonization") as run:
        model = mlflow.pyfunc.load_model(run.log_model(normalizer))
    for slots in (96, 288):  # 15 and 5 minutes
        rows = pd.DataFrame(np.random.default_rng(1).random((2, slots)) * 100 + 1)
        rows.columns = slot_columns(slots)
        served = model.predict(rows)
        assert list(served.columns) == slot_columns(24)
        pd.testing.assert_frame_equal(served, normalizer.predict(rows))


def _tiny_network():
    import keras

    inputs = keras.Input((6, 1), name="window")
    return keras.Model(inputs, keras.layers.Dense(2)(keras.layers.Flatten()(inputs)))


@pytest.mark.usefixtures("tracking")
def test_a_keras_network_is_logged_with_a_signature_and_an_input_example():
    network = _tiny_network()
    x = np.random.default_rng(0).random((8, 6, 1)).astype(np.float32)
    with step("clustering") as run:
        uri = run.log_keras(network, [x])
    info = mlflow.models.get_model_info(uri)
    assert mlflow.get_logged_model(info.model_id).name == "clusterer_network"
    # one input, unnamed: MLflow hands Keras the array itself, without Keras' structure warning
    assert [spec.shape for spec in info.signature.inputs.inputs] == [(-1, 6, 1)]
    assert info.saved_input_example_info is not None
    example = mlflow.models.Model.load(uri).load_input_example(
        mlflow.artifacts.download_artifacts(uri)
    )
    assert example.shape == (5, 6, 1)  # the first rows
    with warnings.catch_warnings():
        warnings.filterwarnings("error", message="The structure of `inputs`")
        predicted = mlflow.pyfunc.load_model(uri).predict(example)
    np.testing.assert_allclose(predicted, network.predict_on_batch(example), rtol=1e-5)


@pytest.mark.usefixtures("tracking")
def test_the_metrics_of_a_step_belong_to_its_family_model_only():
    with step("forecasting") as run:
        run.log_metrics({"test_mae": 10.0})
        run.log_metrics({"train_loss": 1.0}, step=1)  # a training curve
        family = run.log_model(ProfileNormalizer(60, "none"))
        candidates = run.log_model(ProfileNormalizer(60, "l2"), role="candidates")
        network = run.log_keras(_tiny_network(), [np.zeros((2, 6, 1), np.float32)])
        run.log_metrics({"test_rmse": 12.0})
    ids = {
        name: mlflow.models.get_model_info(uri).model_id
        for name, uri in {"family": family, "candidates": candidates, "network": network}.items()
    }
    keys = {
        name: {m.key for m in mlflow.get_logged_model(i).metrics or []} for name, i in ids.items()
    }
    assert keys == {"family": {"test_mae", "test_rmse"}, "candidates": set(), "network": set()}
    names = {mlflow.get_logged_model(i).name for i in ids.values()}
    assert names == {"forecaster", "forecaster_candidates", "forecaster_network"}
    assert mlflow.get_run(run.run_id).data.metrics["test_rmse"] == 12.0


@pytest.mark.usefixtures("tracking")
def test_an_older_run_s_model_is_found_under_its_old_name():
    with mlflow.start_run() as old:
        legacy = log_predictor(ProfileNormalizer(60, "l2"), name=tracking.LEGACY_MODEL_NAME)
    with step("harmonization") as new:
        current = new.log_model(ProfileNormalizer(60, "l2"))
    with mlflow.start_run() as empty:
        pass
    assert tracking.logged_model_uri(old.info.run_id, "harmonization") == legacy.model_uri
    assert tracking.logged_model_uri(new.run_id, "harmonization") == current
    with pytest.raises(MeterflowError, match="logged no normalizer model"):
        tracking.logged_model_uri(empty.info.run_id, "harmonization")


@pytest.mark.usefixtures("tracking")
def test_a_registered_version_and_its_model_are_described(monkeypatch, caplog):
    monkeypatch.setattr(registry, "_registry_prefix", f"described{time.time_ns()}")
    logging.getLogger("mlflow").addHandler(caplog.handler)  # MLflow's loggers do not propagate
    try:
        runs = []
        for _ in range(2):
            with step("forecasting") as run:
                run.log_model(ProfileNormalizer(60, "l2"))
            runs.append(run.run_id)
        first = tracking.register_version("forecasting", runs[0], {"k": 1}, "first", "what it is")
        second = tracking.register_version("forecasting", runs[1], {}, "second", "changed")
    finally:
        logging.getLogger("mlflow").removeHandler(caplog.handler)
    client, name = MlflowClient(), tracking.registered_name("forecasting")
    assert (first, second) == ("1", "2")
    assert client.get_model_version(name, "1").description == "first"
    assert client.get_model_version(name, "2").run_id == runs[1]
    assert client.get_registered_model(name).description == "what it is"  # set once
    assert not [r for r in caplog.records if "registering model based on" in r.getMessage()]
