"""``hybrid``: the spatio-temporal forecaster of seed 001: the LSTM forecaster's window and
decoder (``lstm`` module) beside a small CNN on a spatial grid of the meter's neighbours' recent
load (``spatial`` module), concatenated into a dense head (``networks`` module). Needs the meter
table's coordinates.
"""

from __future__ import annotations

from meterflow.forecasting.base import Capabilities
from meterflow.forecasting.lstm import LstmForecaster


class HybridForecaster(LstmForecaster):
    name = "hybrid"
    capabilities = Capabilities(
        global_model=True,
        baseline=False,
        quantiles=True,
        exogenous=True,
        deep=True,
        needs_locations=True,
        history_days=7,
    )
    spatial = True
