# Conveyor: `make demo` and `make test` set everything up on a fresh machine.
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.conveyor-installed

.PHONY: install demo test lint bench clean

install: $(STAMP)

# One pinned, coherent set (constraints.txt) so pip never backtracks.
$(STAMP): pyproject.toml setup.py constraints.txt
	@command -v $(PYTHON) >/dev/null || { echo "Python 3.11 is required ($(PYTHON) not found)"; exit 1; }
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade "pip>=24" "setuptools>=69" wheel
	$(BIN)/python -m pip install --quiet -c constraints.txt -e ".[dev,data]"
	touch $(STAMP)

demo: install
	$(BIN)/conveyor demo --output out/demo

test: install
	$(BIN)/pytest -q tests

lint: install
	$(BIN)/ruff check components beam_utils orchestration tests benchmarks

bench: install
	$(BIN)/python benchmarks/io_readers.py

clean:
	rm -rf out build dist *.egg-info .pytest_cache
