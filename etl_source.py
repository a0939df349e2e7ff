"""MLflow entry point `etl_source` (and `etl_<name>` of a registered source without a script of
its own): read any registered source and clean it into daily profiles.

Options: `python etl_source.py --help`; logic: `meterflow.tasks.etl`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("etl_source"))
