"""MLflow entry point `etl_sql`: SQL historian -> cleaned daily profiles.

Options: `python etl_sql.py --help`; logic: `meterflow.tasks.etl`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("etl_sql"))
