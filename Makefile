# Two commands on a fresh machine with Python 3.11+ and pip:
#   make demo   - builds a six-node network from real data and serves the catalogue
#   make test   - runs the whole test suite
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: demo test bench docs lock clean

# The versions in requirements.lock, the ones the tests ran with and pip-audit checks.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[test]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/biofed demo

test: $(BIN)/.installed
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python -m bench

docs: $(BIN)/.installed
	$(BIN)/python -m biofed.clidocs && $(BIN)/python -m biofed.schema.generate && $(BIN)/python -m biofed.schema.docs

# Re-resolve requirements.lock from pyproject.toml (uv keeps the current pins where they still fit).
lock: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml --extra test --universal --python-version 3.11 --no-header --quiet -o requirements.lock
	printf '%s\n' "# The exact versions \`make test\` and \`make demo\` install (pip install -c requirements.lock -e '.[test]')" \
	  "# and \`pip-audit\` checks. Python >= 3.11, any platform. After changing pyproject.toml: make lock" \
	  | cat - requirements.lock > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) biofed-demo .pytest_cache
