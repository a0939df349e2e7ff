"""MLflow entry point `anomaly`: every detector (forecast residuals, reconstruction errors,
seasonal-naive z-scores, isolation forest) with spike, daily-energy, base-load, clock and
flat-line evidence, thresholds and the choice learned from anomalies planted into the
validation days, alerts deduplicated across runs in the SQL and Mongo stores.

Options: `python steps/anomaly.py --help`; logic: `meterflow.tasks.anomaly`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("anomaly"))
