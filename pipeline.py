"""MLflow entry point `main`: every step, chained as child runs of one parent run.

Options: `python pipeline.py --help`; logic: `meterflow.orchestration.pipeline`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("main"))
