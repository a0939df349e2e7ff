"""``hybrid``: the forecaster of seed 001 (the hybrid spatio-temporal forecasting project): the
LSTM forecaster's window and decoder (``lstm`` module) beside a small CNN on a spatial grid of
the meter's neighbours' recent load (``spatial`` module), concatenated into a dense head
(``networks`` module). Needs the meter table's coordinates.
"""

from __future__ import annotations

from dataclasses import replace

from meterflow.forecasting.lstm import LstmForecaster


class HybridForecaster(LstmForecaster):
    name = "hybrid"
    capabilities = replace(LstmForecaster.capabilities, needs_locations=True)
    spatial = True
