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
from importlib import metadata
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd

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
    "torch",
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


def _requirements() -> list[str]:
    reqs = []
    for name in _RUNTIME:
        try:
            version = metadata.version(name)
        except metadata.PackageNotFoundError:
            continue
        reqs.append(f"{name}=={version.split('+')[0]}")
    return reqs


def log_predictor(predictor: Any, *, name: str) -> str:
    """Log ``predictor`` into the active run as pyfunc model ``name``; return its model URI."""
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
                pip_requirements=_requirements(),
                metadata={"predictor": type(predictor).__name__},
            )
    return info.model_uri
