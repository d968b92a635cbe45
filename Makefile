# Two commands on a fresh machine with Python 3.11+ and pip:
#   make demo   - builds a six-node network from real data and serves the catalogue
#                 (options through ARGS: make demo ARGS="--port 9001 --base-port 9100")
#   make test   - runs the whole test suite
PYTHON ?= python3
VENV := .venv
comma := ,
BIN := $(VENV)/bin

# The development environment: BioFed with the extras of pyproject.toml for the tests, the benchmarks
# and the dependency audit (README, "Dependencies"); requirements.lock pins all of them.
EXTRAS := test,bench,audit

.PHONY: demo test bench audit docs lock clean

# The versions in requirements.lock, the ones the tests ran with and pip-audit checks.
$(BIN)/.installed: pyproject.toml requirements.lock
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet -c requirements.lock pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[$(EXTRAS)]'
	touch $@

demo: $(BIN)/.installed
	$(BIN)/biofed demo $(ARGS)

test: $(BIN)/.installed
	$(BIN)/python -m pytest

bench: $(BIN)/.installed
	$(BIN)/python -m bench

# Known vulnerabilities in the pins of requirements.lock (needs the network). AUDIT_OPTIONS=--unreachable-ok
# reports an unreachable vulnerability service as NOT CHECKED and exits 0 (what CI does).
audit: $(BIN)/.installed
	$(BIN)/python .ci/audit.py $(AUDIT_OPTIONS)

docs: $(BIN)/.installed
	$(BIN)/python -m biofed.clidocs && $(BIN)/python -m biofed.schema.generate && $(BIN)/python -m biofed.schema.docs

# Re-resolve requirements.lock from pyproject.toml (uv keeps the current pins where they still fit).
lock: $(BIN)/.installed
	$(BIN)/python -m pip install --quiet uv
	$(BIN)/uv pip compile pyproject.toml $(foreach extra,$(subst $(comma), ,$(EXTRAS)),--extra $(extra)) --universal --python-version 3.11 --no-header --quiet -o requirements.lock
	printf '%s\n' "# The exact versions \`make test\` and \`make demo\` install (pip install -c requirements.lock -e '.[$(EXTRAS)]')" \
	  "# and \`pip-audit\` checks. Python >= 3.11, any platform. After changing pyproject.toml: make lock" \
	  | cat - requirements.lock > requirements.lock.new && mv requirements.lock.new requirements.lock

clean:
	rm -rf $(VENV) biofed-demo .pytest_cache
