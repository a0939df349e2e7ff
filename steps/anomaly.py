"""MLflow entry point `anomaly`: the chosen detector beside its baselines (forecast residuals,
reconstruction errors, seasonal-naive z-scores, isolation forest) with daily-energy and
flat-line evidence, thresholds from validation, alerts written to the SQL and Mongo stores.

Options: `python steps/anomaly.py --help`; logic: `meterflow.tasks.anomaly`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("anomaly"))
