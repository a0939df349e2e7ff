"""MLflow entry point `score`: a registered model (e.g. `models:/meterflow-forecasting@champion`)
over every meter of a Parquet dataset, in meter blocks, here or on a Dask cluster.

Options: `python score.py --help`; logic: `meterflow.tasks.score`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("score"))
