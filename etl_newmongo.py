"""MLflow entry point `etl_newmongo`: loaded MongoDB documents -> cleaned daily profiles.

Options: `python etl_newmongo.py --help`; logic: `meterflow.tasks.etl`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("etl_newmongo"))
