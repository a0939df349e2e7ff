"""meterflow: smart-meter readings to load-profile clusters, forecasts and anomaly alerts.

Layers (see README "Architecture"): ``sources`` talk to stores, ``etl``/``profiles``/
``clustering``/``forecasting``/``anomaly`` are pure, ``tracking`` is the only MLflow seam,
``tasks`` orchestrate one step each and are what the entry-point scripts call.
"""

__version__ = "0.1.0"
