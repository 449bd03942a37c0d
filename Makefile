# The two set-up commands are `make run` and `make test`; everything else is a helper.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(VENV)/bin/pip
STAMP := $(VENV)/.installed
PORT ?= 8000
EMULATOR_PORT ?= 8443
LOAD_SECONDS ?= 120
LOAD_USERS ?= 16
CHAOS_SECONDS ?= 45

.PHONY: run test bench lint mutate install migrate seed emulator worker clean load load-rate chaos fuzz

$(STAMP): requirements.txt requirements-dev.txt
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet --upgrade pip
	$(PIP) install --quiet -r requirements-dev.txt
	touch $(STAMP)

install: $(STAMP)

migrate: install
	$(PY) manage.py migrate --noinput

# Seeding calls Microsoft, so it needs the emulator: runportal starts it, seeds, and stops.
seed: migrate
	$(PY) manage.py runportal --seed-only --emulator-port $(EMULATOR_PORT)

# Microsoft emulator, then the demo seed (idempotent), then Celery worker + beat and the web
# server (gunicorn), on embedded defaults (SQLite, no Redis). Logs go to var/log/.
run: migrate
	$(PY) manage.py runportal --port $(PORT) --emulator-port $(EMULATOR_PORT)

test: install
	$(PY) -m pytest -q $(PYTEST_ARGS)

# Every benchmark, one table. The HTTP one (gunicorn + wrk, portal against a bare Django project) takes
# about two minutes: BENCH_HTTP=0 leaves it out, BENCH_HTTP_SECONDS sets wrk's time per endpoint.
BENCH_HTTP ?= 1
BENCH_HTTP_SECONDS ?= 5
bench: install
	BENCH_HTTP=$(BENCH_HTTP) BENCH_HTTP_SECONDS=$(BENCH_HTTP_SECONDS) $(PY) -m benchmarks

# Mutation testing of the money-and-trust rules (docs/mutation-testing.md). Not part of `make test`:
# each module in its own scratch copy with only its own tests, stopped after MUTATE_MODULE_TIMEOUT
# seconds (MUTATE_ONLY=core/audit.py limits the run), then per-module figures against the floors. On SQLite;
# with DATABASE_URL naming PostgreSQL on PostgreSQL, each of the MUTATE_JOBS workers with a test database
# of its own copied from a migrated template (docs/decisions/040-mutation-testing-on-postgres.md).
MUTATE_MODULE_TIMEOUT ?= 900
MUTATE_JOBS ?= 2
mutate: install
	MUTATE_MODULE_TIMEOUT=$(MUTATE_MODULE_TIMEOUT) MUTATE_JOBS=$(MUTATE_JOBS) $(PY) tools/mutate.py
	$(PY) tools/mutation_summary.py

# The nightly API fuzz (decision 027): the CI's Schemathesis test with FUZZ_EXAMPLES (default 100) examples
# and tonight's seed, in-process; with FUZZ_BASE_URL and FUZZ_API_KEYS, against that server instead.
# Reports in var/fuzz/. Not part of `make test`.
fuzz: install
	.ci/nightly

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports

clean:
	rm -rf var .pytest_cache

# A day's mix against gunicorn + PostgreSQL + Redis + workers + emulator, and faults under writes.
# Long runs, outside `make test` (tests/test_load_chaos_smoke.py is the short version in the suite).
load: install
	$(PY) -m benchmarks.load --seconds $(LOAD_SECONDS) --users $(LOAD_USERS)

# The highest rate the machine holds: open-loop stages of rising rate (benchmarks/load.py --find-rate).
LOAD_STAGE_SECONDS ?= 20
LOAD_RATES ?= 2,4,8,12,16,24,32,48
load-rate: install
	$(PY) -m benchmarks.load --find-rate --stage-seconds $(LOAD_STAGE_SECONDS) --rates $(LOAD_RATES) --users 8

chaos: install
	$(PY) -m benchmarks.chaos --seconds $(CHAOS_SECONDS)
