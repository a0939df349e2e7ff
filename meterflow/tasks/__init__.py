"""One function per MLflow entry point: read inputs (sources or upstream runs), call the pure
layers, log through ``meterflow.tracking``. The entry-point scripts only parse options and call
these."""
