"""The pyfunc model definition MLflow loads "from code" (no CloudPickle of a Python object);
``meterflow.models.pyfunc.log_predictor`` logs this file as the model."""

import mlflow

from meterflow.models.pyfunc import PredictorModel

mlflow.models.set_model(PredictorModel())
