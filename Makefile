# Conveyor: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.conveyor-installed

.PHONY: install airflow-env chromium mariadb engines engines-stop test-engines test-engines-all demo test test-pipelines test-fast lint bench clean

install: $(STAMP)

# One pinned, coherent set (constraints.txt) so pip never backtracks.
$(STAMP): pyproject.toml setup.py constraints.txt beam_utils/_wire.c
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=69" wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,data,kubeflow,engines]"
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

# Debian's Chromium for the browser tests (tests/test_ui_browser.py drives it through
# Playwright with executable_path=/usr/bin/chromium: no browser download, no `playwright install`).
CHROMIUM ?= /usr/bin/chromium
SUDO     := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

chromium: $(CHROMIUM)

$(CHROMIUM):
	@command -v apt-get >/dev/null || { echo "$(CHROMIUM) is missing and there is no apt-get: install Chromium so that $(CHROMIUM) exists"; exit 1; }
	$(SUDO) apt-get update
	DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends chromium

# MariaDB from Debian's packages, for ML Metadata on MySQL (tests/engines/test_mysql_metadata.py
# starts its own server with its data in a temporary folder; no system server is used).
mariadb:
	@command -v mariadbd >/dev/null 2>&1 || test -x /usr/sbin/mariadbd || \
	  { $(SUDO) apt-get update && DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y --no-install-recommends mariadb-server mariadb-client; }

# The real engines on loopback: Flink 1.19 (JobManager, TaskManager with 2 slots, Beam's Flink
# job server, a Python worker pool on 50000) and Spark 3.5 (a master, two workers, Beam's Spark
# job server, a worker pool on 50001); logs in .engines/logs/, the Beam flags that reach each in
# .engines/<engine>.args. The jars come from PyPI and Maven Central, cached in .engines/cache/
# and ~/.m2.
engines: install
	$(BIN)/python -m conveyor.orchestration.engines start

engines-stop:
	test ! -x $(BIN)/python || $(BIN)/python -m conveyor.orchestration.engines stop

# The tests against real servers (Flink, Spark, MariaDB, s3proxy): each fixture starts what is
# not up and stops only what it started. Not part of `make test`; CI runs it after. The one that
# sends a whole pipeline to Spark as many jobs (tests/engines/conftest.py: LONG) runs in
# test-engines-all.
test-engines: install mariadb
	$(BIN)/pytest -q --durations=20 -m "not engines_long" tests/engines

test-engines-all: install mariadb
	$(BIN)/pytest -q --durations=20 tests/engines

demo: install
	$(BIN)/conveyor demo --output out/demo

# The suite, as CI runs it: the Airflow venv too, for the DAG export tests; two pytest
# workers (one per core), each test file on one worker. The whole pipelines run end to end
# through Airflow and Kubeflow (marked `pipelines` in tests/conftest.py) are in
# test-pipelines, which CI runs after it.
test: install airflow-env chromium
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=10 -m "not pipelines" --ignore=tests/engines tests

test-pipelines: install airflow-env
	$(BIN)/pytest -q -n 2 --dist loadfile --durations=10 -m pipelines --ignore=tests/engines tests

# Without the tests marked slow (job services, worker processes, training, whole pipelines;
# the list is in tests/conftest.py): a quick check while working.
test-fast: install chromium
	$(BIN)/pytest -q --durations=10 -m "not slow" --ignore=tests/engines tests

LINT_PATHS := components beam_utils dsl orchestration tfx tests benchmarks

lint: install
	$(BIN)/ruff check $(LINT_PATHS)
	$(BIN)/ruff format --check $(LINT_PATHS)

bench: install
	$(BIN)/python benchmarks/io_readers.py

clean:
	rm -rf out build dist *.egg-info .pytest_cache
