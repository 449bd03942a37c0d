# The two set-up commands are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PORT ?= 8000
EMULATOR_PORT ?= 8443

.PHONY: run test bench lint mutate install migrate seed emulator worker clean

$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

seed: migrate
	$(PY) manage.py seed_demo

# Portal + Celery worker + beat + Microsoft emulator on embedded defaults (SQLite, no Redis).
run: seed
	$(PY) manage.py runportal --port $(PORT) --emulator-port $(EMULATOR_PORT)

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

bench: install
	$(PY) -m benchmarks

# Mutation testing of the money-and-trust rules (docs/mutation-testing.md). Not part of `make test`:
# each module in its own scratch copy with only its own tests, stopped after MUTATE_MODULE_TIMEOUT
# seconds (MUTATE_ONLY=core/audit.py limits the run), then per-module figures against the floors.
MUTATE_MODULE_TIMEOUT ?= 900
MUTATE_JOBS ?= 2
mutate: install
	MUTATE_MODULE_TIMEOUT=$(MUTATE_MODULE_TIMEOUT) MUTATE_JOBS=$(MUTATE_JOBS) $(PY) tools/mutate.py
	$(PY) tools/mutation_summary.py

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf var .pytest_cache
