# Two commands do all the set-up (README): `make demo` runs the whole pipeline on the demo fleet,
# `make test` runs the tests. Both create/refresh the virtual environment first.
PYTHON ?= python3.11
VENV ?= .venv
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export MLFLOW_EXPERIMENT_NAME ?= meterflow
# `mlflow run` itself talks to the tracking server before and after the project's code: bound
# its HTTP calls too (MLflow's defaults retry for about 14 minutes).
export MLFLOW_HTTP_REQUEST_MAX_RETRIES ?= 3
export MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR ?= 1
export MLFLOW_HTTP_REQUEST_TIMEOUT ?= 30
# `make demo ARGS="-P cluster_model=kmedoids -P cluster_distance_metric=dtw"` passes options to
# the pipeline (each step's options under its prefix: cluster_, forecast_, anomaly_).
ARGS ?=
# `mlflow run .` after the preflight checks (tracking store reachable and sound, state record
# known), every failure in one line: meterflow/orchestration/launch.py
LAUNCH = python -m meterflow.orchestration.launch --experiment-name $(MLFLOW_EXPERIMENT_NAME)

.PHONY: demo retrain test lint ui results benchmarks

demo: $(STAMP)
	@$(LAUNCH) $(ARGS)

# the nightly run: new data, changed steps, promotion (see README "Nightly operation")
retrain: $(STAMP)
	@$(LAUNCH) -e retrain $(ARGS)

test: $(STAMP)
	python -m pytest $(ARGS)

lint: $(STAMP)
	ruff check . && ruff format --check .

# re-render results.ipynb from the newest `main` run of $(MLFLOW_EXPERIMENT_NAME)
results: $(STAMP)
	python -m nbconvert --to notebook --execute --inplace results.ipynb

ui: $(STAMP)
	mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --port 5000

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)
