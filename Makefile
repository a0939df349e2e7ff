# Two commands do all the set-up (README): `make demo` runs the whole pipeline on the demo fleet,
# `make test` runs the tests. Both create/refresh the virtual environment first.
PYTHON ?= python3.11
VENV ?= .venv
STAMP := $(VENV)/.installed
export PATH := $(abspath $(VENV))/bin:$(PATH)
export MLFLOW_TRACKING_URI ?= sqlite:///mlflow.db
export MLFLOW_EXPERIMENT_NAME ?= meterflow
# `make demo ARGS="-P model=kmedoids -P distance_metric=dtw"` passes options to the pipeline.
ARGS ?=

.PHONY: demo retrain test lint ui results benchmarks

demo: $(STAMP)
	mlflow run . --env-manager local --experiment-name $(MLFLOW_EXPERIMENT_NAME) $(ARGS)

# the nightly run: new data, changed steps, promotion (see README "Nightly operation")
retrain: $(STAMP)
	mlflow run . -e retrain --env-manager local --experiment-name $(MLFLOW_EXPERIMENT_NAME) $(ARGS)

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
