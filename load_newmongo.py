"""MLflow entry point `load_newmongo`: new readings documents from MongoDB (incremental watermark).

Options: `python load_newmongo.py --help`; logic: `meterflow.tasks.newmongo`.
"""

import sys

from meterflow.cli import run_entry
from meterflow.config import LoadNewMongoOptions
from meterflow.tasks.newmongo import run_load_newmongo

if __name__ == "__main__":
    sys.exit(run_entry("load_newmongo", LoadNewMongoOptions, run_load_newmongo))
