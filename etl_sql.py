"""MLflow entry point `etl_sql`: SQL historian -> cleaned daily profiles.

Options: `python etl_sql.py --help`; logic: `meterflow.tasks.etl`.
"""

import sys

from meterflow.cli import run_entry
from meterflow.config import EtlSqlOptions
from meterflow.tasks.etl import run_etl_sql

if __name__ == "__main__":
    sys.exit(run_entry("etl_sql", EtlSqlOptions, run_etl_sql))
