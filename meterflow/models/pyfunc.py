"""One generic pyfunc wrapper for every predictor the steps produce.

A predictor is a picklable object with ``predict(pd.DataFrame) -> pd.DataFrame | np.ndarray`` and
``input_example() -> pd.DataFrame``; it carries its own scalers, settings and weights. The model
ships the ``meterflow`` package as code, so ``mlflow.pyfunc.load_model`` works in a fresh process
without the project checked out.
"""

from __future__ import annotations

import pickle
import tempfile
import warnings
from collections.abc import Sequence
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import ColSpec, Schema, TensorSpec

import meterflow

PREDICTOR_ARTIFACT = "predictor"
# Runtime packages a loaded model may import (pinned to the versions that trained it).
_RUNTIME = (
    "numpy",
    "pandas",
    "pyarrow",
    "scipy",
    "scikit-learn",
    "numba",
    "tensorflow-cpu",
    "keras",
    "tslearn",
    "kmedoids",
    "minisom",
    "matplotlib",
    "pydantic",
)


class PredictorModel(mlflow.pyfunc.PythonModel):
    """pyfunc model around a pickled meterflow predictor."""

    def load_context(self, context: Any) -> None:
        with open(context.artifacts[PREDICTOR_ARTIFACT], "rb") as f:
            self.predictor = pickle.load(f)

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> Any:
        return self.predictor.predict(model_input)


def _requirements(names: Sequence[str] = _RUNTIME) -> list[str]:
    reqs = []
    for name in names:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        reqs.append(f"{name}=={version.split('+')[0]}")
    return reqs


def _signature(predictor: Any, example: pd.DataFrame) -> ModelSignature | bool | None:
    """The model's signature: the columns a predictor lists in ``input_columns()`` (``(name,
    MLflow type, required)``, so optional columns are kept) and the outputs of its example;
    none for a predictor with ``schema_free_input = True`` (it checks its own input, which comes
    in more than one layout); else inferred from the input example (None)."""
    columns = getattr(predictor, "input_columns", None)
    if columns is not None:
        inputs = Schema([ColSpec(kind, name, required=req) for name, kind, req in columns()])
        outputs = infer_signature(predictor.predict(example)).inputs
        return ModelSignature(inputs=inputs, outputs=outputs)
    if getattr(predictor, "schema_free_input", False):
        return False
    return None


def log_predictor(predictor: Any, *, name: str, step: int = 0) -> Any:
    """Log ``predictor`` into the active run as pyfunc model ``name`` (at model ``step``) with
    its input example and signature (``_signature``); return MLflow's ``ModelInfo``."""
    example = predictor.input_example()
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "predictor.pkl"
        with path.open("wb") as f:
            pickle.dump(predictor, f, protocol=pickle.HIGHEST_PROTOCOL)
        with warnings.catch_warnings():
            # integer outputs (cluster labels, counts) are by design, never missing
            warnings.filterwarnings("ignore", message=".*integer column", category=UserWarning)
            info = mlflow.pyfunc.log_model(
                name=name,
                python_model=str(Path(__file__).with_name("predictor_model.py")),
                artifacts={PREDICTOR_ARTIFACT: str(path)},
                code_paths=[str(Path(meterflow.__file__).parent)],
                input_example=example,
                signature=_signature(predictor, example),
                pip_requirements=_requirements(),
                metadata={"predictor": type(predictor).__name__},
                step=step,
            )
    return info


EXAMPLE_ROWS = 5  # rows of a network's input example


class _KerasFlavor:
    """``mlflow.keras`` as a flavor for ``Model.log``, with the model folder made first: MLflow
    3.17's ``mlflow.keras.save_model`` writes the input example into that folder before it
    creates it (FileNotFoundError ``…/model/input_example.json``)."""

    @staticmethod
    def save_model(path: str, **kwargs: Any) -> None:
        Path(path).mkdir(parents=True, exist_ok=True)
        mlflow.keras.save_model(path=path, **kwargs)


def log_keras_network(
    network: Any, example_inputs: Sequence[np.ndarray], *, name: str, step: int = 0
) -> Any:
    """Log a Keras network with MLflow's Keras flavor (which adds ``python_function``), an
    explicit tensor signature and the first rows of ``example_inputs`` as its input example (one
    array, or one per named input); return MLflow's ``ModelInfo``."""
    outputs = np.asarray(network.predict_on_batch(_keras_inputs(example_inputs)))
    names = [str(tensor.name) for tensor in network.inputs]
    # one input: unnamed, so MLflow hands Keras the array itself (a named one goes in a list,
    # which Keras warns about at every predict)
    specs = [
        TensorSpec(np.dtype(np.float32), (-1, *a.shape[1:]), name=n if len(names) > 1 else None)
        for a, n in zip(example_inputs, names, strict=True)
    ]
    signature = ModelSignature(
        inputs=Schema(specs),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, *outputs.shape[1:]))]),
    )
    rows = [np.asarray(a[:EXAMPLE_ROWS], dtype=np.float32) for a in example_inputs]
    example = rows[0] if len(rows) == 1 else dict(zip(names, rows, strict=True))
    return mlflow.models.Model.log(
        artifact_path=None,
        name=name,
        flavor=_KerasFlavor,
        flavor_name="mlflow.keras",
        model=network,
        signature=signature,
        input_example=example,
        pip_requirements=_requirements(("tensorflow-cpu", "keras", "numpy")),
        step=step,
    )


def _keras_inputs(arrays: Sequence[np.ndarray]) -> np.ndarray | list[np.ndarray]:
    return arrays[0] if len(arrays) == 1 else list(arrays)
