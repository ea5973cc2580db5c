# Two commands set everything up: `make demo` and `make test`.
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
# What the system must provide (Python's venv module; Chromium and its driver for the
# tests; libGammu and a compiler only where no python-gammu wheel fits): installed as
# root or with passwordless sudo, else named with the command to run, and make stops.
SYSTEM_DEPS = sh tests/system-deps.sh

.PHONY: demo test install bench model translations clean

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

# After changing a labelled text in tests/data: retrain the reader's intent model
# (gateway/desk/data/intent_model.json.gz); the tests fail while it is out of date.
model: install
	$(BIN)/python tools/train_intent_model.py

# After changing a user-visible string: extract, merge into the Indonesian catalogue
# (fill in the new msgstr lines), then compile. tests/web/test_i18n.py checks all three.
translations: install
	@mkdir -p var
	$(BIN)/pybabel extract -F babel.cfg -o var/messages.pot --no-location --sort-output .
	$(BIN)/pybabel update -i var/messages.pot -d helpdesk_web/translations --no-fuzzy-matching --ignore-obsolete
	$(BIN)/pybabel compile -d helpdesk_web/translations

clean:
	rm -rf $(VENV) var build *.egg-info
