"""MLflow model wrappers: every step's predictor is logged as a loadable pyfunc model."""
