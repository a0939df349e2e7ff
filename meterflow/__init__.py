"""meterflow: smart-meter readings to load-profile clusters, forecasts and anomaly alerts.

Layers (see docs/architecture.md): ``sources`` talk to stores, ``etl``/``profiles``/
``clustering``/``forecasting``/``anomaly`` are pure, ``tracking`` is the only MLflow seam,
``orchestration`` chains the steps, ``tasks`` run one step each and are what the entry-point
scripts call.
"""

import os

# TensorFlow's C++ log lines are not this project's progress: they are read once, when
# TensorFlow is first imported (the entry points import this package before it). Level 3 keeps
# its C++ INFO, WARNING and ERROR lines out (a benign "NodeDef mentions attribute
# use_unbounded_threadpool" error per training; a failing op still raises in Python). oneDNN
# logs through absl before absl is set up, below every level ("All log messages before
# absl::InitializeLog()", "oneDNN custom operations are on", "DT_INT32 only on platforms with
# AVX-512"): its custom CPU kernels stay off (same losses, same speed for these LSTMs).
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")

__version__ = "0.1.0"
