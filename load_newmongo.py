"""MLflow entry point `load_newmongo`: new readings documents from MongoDB (incremental watermark).

Options: `python load_newmongo.py --help`; logic: `meterflow.tasks.newmongo`.
"""

import sys

from meterflow.cli import run_entry

if __name__ == "__main__":
    sys.exit(run_entry("load_newmongo"))
