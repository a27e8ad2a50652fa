# Conveyor: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.conveyor-installed

.PHONY: install airflow-env demo test lint bench clean

install: $(STAMP)

# One pinned, coherent set (constraints.txt) so pip never backtracks.
$(STAMP): pyproject.toml setup.py constraints.txt beam_utils/_wire.c
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=69" wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,data,kubeflow]"
	touch $(STAMP)

# Apache Airflow for the DAG export tests, in its own venv: its pins clash with ours.
# airflow-constraints.txt is the set pip resolved for this version, frozen.
AIRFLOW_VENV  ?= .venv-airflow
AIRFLOW_STAMP := $(AIRFLOW_VENV)/.airflow-installed

airflow-env: $(AIRFLOW_STAMP)

$(AIRFLOW_STAMP): airflow-constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(AIRFLOW_VENV)/bin/python || $(PYTHON) -m venv $(AIRFLOW_VENV)
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet --upgrade "pip>=24"
	$(AIRFLOW_VENV)/bin/python -m pip install --quiet -c airflow-constraints.txt "apache-airflow==2.10.5"
	touch $(AIRFLOW_STAMP)

demo: install
	$(BIN)/conveyor demo --output out/demo

test: install
	$(BIN)/pytest -q --durations=10 tests

lint: install
	$(BIN)/ruff check components beam_utils orchestration tests benchmarks

bench: install
	$(BIN)/python benchmarks/io_readers.py

clean:
	rm -rf out build dist *.egg-info .pytest_cache
