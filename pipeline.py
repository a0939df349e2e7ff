"""MLflow entry point `main`: every step, chained as child runs of one parent run.

Options: `python pipeline.py --help`; logic: `meterflow.tasks.pipeline`.
"""

import sys

from meterflow.cli import run_entry
from meterflow.config import PipelineOptions
from meterflow.tasks.pipeline import run_pipeline

if __name__ == "__main__":
    sys.exit(run_entry("main", PipelineOptions, run_pipeline))
