# Two commands on a fresh machine with Python 3.11+ and pip:
#   make demo   - builds a six-node network from real data and serves the catalogue
#   make test   - runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench docs clean

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/biofed demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python -m bench

docs: $(BIN)/.installed
	$(BIN)/python -m biofed.clidocs && $(BIN)/python -m biofed.schema.docs

clean:
	rm -rf $(VENV) biofed-demo .pytest_cache
