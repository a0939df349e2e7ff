"""Every user-facing default, defined once.

The entry points' options (``meterflow.config``), the pipeline that derives its children's options
from them, and the pure settings dataclasses (cleaning, forecasting, anomaly) all read these names.
"""

from __future__ import annotations

RESOLUTION_MIN = 60  # profile slot length (minutes)
MAX_GAP_MIN = 60  # longest gap filled by interpolation
NIGHT_MAX_GAP_MIN = 180  # longest gap filled when it lies at night
NORMALIZATION = "l2"  # per-profile normalisation of the harmonized profiles
DTW_WINDOW = 3  # DTW band (dtaidistance ``window``; 0 = unconstrained)
DTW_MAX_PROFILES = 4000  # profiles in the cached DTW matrix
CLUSTER_MODEL = "kmeans"
DISTANCE_METRIC = "euclidean"
FORECAST_MODEL = "auto"  # the best forecaster or combination on validation (forecasting.combine)
AUTO_CANDIDATES = ("lstm",)  # tried by model=auto beside every baseline
RESIDUAL_FORECASTER = "lstm"  # the anomaly step's lstm_residual detector
SEQ_LENGTH = 30  # input window of the LSTMs (slots), as the reference notebook
HORIZON = 5  # slots ahead of the window end, as the reference notebook (output=last)
DAY_AHEAD = 0  # the forecasting step's horizon: 0 = one day of slots at the series' resolution
FORECAST_OUTPUT = "all"  # predict every slot 1..horizon ahead ("last": only the slot horizon)
QUANTILES = (0.1, 0.5, 0.9)  # forecast quantiles (pinball loss); 0.5 is the point forecast
FORECAST_SCOPE = "meter"  # what is forecast: each meter, each cluster's total, the fleet total
ANOMALY_HORIZON = 24  # anomaly residuals: slots ahead (a day at 60 min)
EPOCHS = 8  # the anomaly detector's LSTM (early stopping on validation)
# the forecasting step's LSTM: at most 20 epochs, the learning rate halved on plateaus (11 public
# series: validation MAE / seasonal naive week 0.679 -> 0.672 against 40 epochs at a constant
# rate; demo fleet: validation loss 0.1303 at epoch 20 against 0.1308 at epoch 24 of 29)
FORECAST_EPOCHS = 20
AUTOENCODER_EPOCHS = 30  # clustering's LSTM autoencoder
LSTM_UNITS = (32, 32)  # units of the anomaly detector's stacked LSTM layers
FORECAST_UNITS = (64,)  # the forecaster's LSTM (best validation loss on public demand series)
HIDDEN_SIZE = 32  # units of the clustering autoencoder's LSTMs
THREADS = 1  # TensorFlow CPU threads of a step (small LSTMs train fastest on one)
MAX_TRAIN_WINDOWS = 20_000  # the anomaly detector's LSTM
# ... at most this many for the lstm_residual detector's forecaster (demo fleet, 10 000 against
# 20 000: test F1 0.632 / 0.632, event recall 0.556 / 0.556, planted-copy F1 0.452 / 0.450,
# validation objective 0.499 / 0.471; the detector's CPU 74 / 84 s)
ANOMALY_RESIDUAL_MAX_WINDOWS = 10_000
FORECAST_MAX_TRAIN_WINDOWS = (
    30_000  # the forecaster's (demo: test MAE 419 -> 423 Wh, 3x faster than 100k)
)
# the anomaly step's detector: "auto" = the one that finds the most anomalies planted into its
# validation days (anomaly.calibration), among the detectors it runs (registry names)
ANOMALY_DETECTOR = "auto"
# lstm_residual is left out of the default comparison (``-P detectors=...`` adds it): auto chose
# it on none of the demo fleet and the 10 public fleets (development and held back), and it
# cost 74 of the step's 165 CPU-s on the demo fleet
ANOMALY_DETECTORS = ("lstm_autoencoder", "robust_z", "isolation_forest")
ALARM_BUDGET = 0.1  # false alarms per meter-month the anomaly thresholds may spend
SEED = 42
# meters per block of per-meter work: memory follows the block, not the fleet (a cold year of
# 15-min readings is about 1.6 GB per block in the ETL)
BLOCK_METERS = 100
