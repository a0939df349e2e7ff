"""Tuning constants that are not user options.

User-facing settings are declared once, with their default, check and help, in the ``Params``
class of their step's pure package (``meterflow.<package>.params``; see ``meterflow.params``).
"""

from __future__ import annotations

# the pure forecaster's horizon when no step sets one: 5 slots ahead of the window end, as in the
# IoT LSTM prediction notebook (seed 002); the forecasting step's option defaults to one day
HORIZON = 5
HIDDEN_SIZE = 32  # units of the clustering autoencoder's LSTMs
# at most this many training windows for the lstm_residual detector's forecaster (demo fleet,
# 10 000 against 20 000: test F1 0.632 / 0.632, event recall 0.556 / 0.556, planted-copy F1
# 0.452 / 0.450, validation objective 0.499 / 0.471; the detector's CPU 74 / 84 s)
ANOMALY_RESIDUAL_MAX_WINDOWS = 10_000
# meters per block of per-meter work: memory follows the block, not the fleet (a cold year of
# 15-min readings is about 1.6 GB per block in the ETL)
BLOCK_METERS = 100
