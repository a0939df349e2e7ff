"""MLflow entry point `retrain`: the nightly run — new MongoDB readings, the steps whose inputs
changed, and Model Registry promotion of models that beat their champion.

Options: `python retrain.py --help`; logic: `meterflow.orchestration.pipeline`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("retrain"))
