"""MLflow entry point `forecasting`: load forecasts (LSTM / hybrid) against honest baselines.

Options: `python steps/forecasting.py --help`; logic: `meterflow.tasks.forecasting`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("forecasting"))
