"""meterflow: smart-meter readings to load-profile clusters, forecasts and anomaly alerts.

Layers (see README "Architecture"): ``sources`` talk to stores, ``etl``/``profiles``/
``clustering``/``forecasting``/``anomaly`` are pure, ``tracking`` is the only MLflow seam,
``orchestration`` chains the steps, ``tasks`` run one step each and are what the entry-point
scripts call.
"""

import os

# TensorFlow's C++ INFO lines (oneDNN, CPU features) are not this project's progress; its
# warnings and errors still show. Read once, when TensorFlow is first imported.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "1")

__version__ = "0.1.0"
