"""MLflow entry point `harmonization`: one profile table from all sources + the cached DTW matrix.

Options: `python harmonization.py --help`; logic: `meterflow.tasks.harmonization`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("harmonization"))
