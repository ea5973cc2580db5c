# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# What the system must provide (Python's venv module; Chromium and its driver for the
# tests; libGammu and a compiler only where no python-gammu wheel fits): installed as
# root or with passwordless sudo, else named with the command to run, and make stops.
SYSTEM_DEPS = sh tests/system-deps.sh

.PHONY: demo test install bench clean

# Re-made whenever pyproject.toml changes. The venv needs Python's venv module first.
$(BIN)/helpdesk: pyproject.toml
	@$(SYSTEM_DEPS) install "$(PYTHON)" "$(VENV)"
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet --prefer-binary -e '.[test]'
	touch $@

install: $(BIN)/helpdesk

demo: install
	$(BIN)/helpdesk demo

# The system first (before the venv exists, so one message names all that is missing),
# then the lint rules of pyproject.toml, then the suite.
test:
	@$(SYSTEM_DEPS) test "$(PYTHON)" "$(VENV)"
	@$(MAKE) --no-print-directory install
	$(BIN)/ruff check .
	$(BIN)/lint-imports
	$(BIN)/python -m pytest

# Every benchmark in bench/; updates docs/benchmarks*.md. BENCH_ARGS=--quick: a short
# smoke run that writes no page (bench/run_all.py --help).
BENCH_ARGS ?=
bench: install
	$(BIN)/python bench/run_all.py $(BENCH_ARGS)

clean:
	rm -rf $(VENV) var build *.egg-info
