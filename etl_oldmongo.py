"""MLflow entry point `etl_oldmongo`: old per-meter exports -> cleaned daily profiles.

Options: `python etl_oldmongo.py --help`; logic: `meterflow.tasks.etl`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("etl_oldmongo"))
