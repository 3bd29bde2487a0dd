# The one entry point. `make run` and `make test` need only Python 3.11 and make.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
PORT ?= 8000

.PHONY: run test lint format bench deps clean

$(VENV)/.installed: requirements.txt requirements-dev.txt
	@command -v $(PYTHON) >/dev/null 2>&1 || { echo "Python 3.11 is required (set PYTHON=/path/to/python3.11)"; exit 1; }
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $@

deps: $(VENV)/.installed

## Start PostgreSQL and Redis (embedded unless DATABASE_URL / REDIS_URL are set), migrate, seed the
## demo and run web + worker + beat on http://127.0.0.1:$(PORT) until Ctrl-C.
run: deps
	$(PY) scripts/dev.py run --port $(PORT)

## The whole suite: unit, integration (real Celery worker, real Redis) and browser tests.
## Extra pytest arguments: make test ARGS="-k healthz"
## Two workers; --dist worksteal: a worker that runs out of tests takes half of what the other
## still has queued, so the slow tail (browser, fuzzer, real-worker tests, which pytest-django
## runs after the others) cannot leave one worker idle for minutes while the other works through
## a queue of them.
test: deps
	$(PY) scripts/dev.py test -n 2 --dist worksteal $(ARGS)

lint: deps
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(PY) scripts/import_cycles.py
	$(PY) scripts/dev.py exec -- $(PY) manage.py makemigrations --check --dry-run

format: deps
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

bench: deps
	$(PY) scripts/dev.py exec -- $(PY) -m tests.bench

clean:
	rm -rf $(VENV) .data
