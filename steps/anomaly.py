"""MLflow entry point `anomaly`: LSTM prediction-error anomaly detection, scored on labels.

Options: `python steps/anomaly.py --help`; logic: `meterflow.tasks.anomaly`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("anomaly"))
