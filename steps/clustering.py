"""MLflow entry point `clustering`: cluster daily load profiles, validate, log a model.

Options: `python steps/clustering.py --help`; logic: `meterflow.tasks.clustering`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("clustering"))
