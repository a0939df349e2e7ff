# Two commands do all the set-up (README.md, docs/getting-started.md): `make demo` runs the whole
# pipeline on the demo fleet, `make test` runs the tests. Both create/refresh the virtual
# environment first.
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

# `make ui PORT=5050` / `make serve STEP=anomaly PORT=5002` pick another port or step.
PORT ?= 5000
STEP ?= forecasting
REGISTRY_PREFIX ?= $(or $(METERFLOW_REGISTRY_PREFIX),meterflow)

.PHONY: demo retrain test lint ui serve results benchmarks docs

demo: $(STAMP)
	@$(LAUNCH) $(ARGS)

# the nightly run: new data, changed steps, promotion (docs/nightly-operation.md)
retrain: $(STAMP)
	@$(LAUNCH) -e retrain $(ARGS)

test: $(STAMP)
	python -m pytest $(ARGS)

lint: $(STAMP)
	ruff check . && ruff format --check .

# render results.ipynb against the newest `main` run of $(MLFLOW_EXPERIMENT_NAME) into a copy,
# results-latest.ipynb (gitignored); the committed results.ipynb stays as it is
results: $(STAMP)
	python -m nbconvert --to notebook --execute results.ipynb --output results-latest.ipynb

# the MLflow UI on the tracking store (docs/ui-tour.md)
ui: $(STAMP)
	mlflow ui --backend-store-uri $(MLFLOW_TRACKING_URI) --port $(PORT)

# the champion of one step's registered model over REST (docs/use-a-champion.md)
serve: $(STAMP)
	mlflow models serve -m models:/$(REGISTRY_PREFIX)-$(STEP)@champion --port $(PORT) \
		--env-manager local

# every benchmark in benchmarks/ at full size (docs/benchmarks.md); ARGS="--quick" for the quick
# sizes, or benchmark names; ARGS go to `python -m benchmarks`
benchmarks: $(STAMP)
	python -m benchmarks $(ARGS)

# the documentation site (MkDocs) into site/ (gitignored)
docs: $(STAMP)
	mkdocs build --strict --site-dir site

$(STAMP): pyproject.toml constraints.txt
	test -x $(VENV)/bin/python || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(VENV)/bin/python -m pip install --quiet -c constraints.txt -e ".[dev]"
	touch $(STAMP)
