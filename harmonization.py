"""MLflow entry point `harmonization`: one profile table from all sources + the cached DTW matrix.

Options: `python harmonization.py --help`; logic: `meterflow.tasks.harmonization`.
"""

import sys

from meterflow.cli import run_entry
from meterflow.config import HarmonizationOptions
from meterflow.tasks.harmonization import run_harmonization

if __name__ == "__main__":
    sys.exit(run_entry("harmonization", HarmonizationOptions, run_harmonization))
