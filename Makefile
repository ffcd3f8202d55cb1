# Vectorplane developer entry points (GNU make).
#
#   make run           embedded PostgreSQL + Redis, migrations, demo data, web/worker/beat
#   make test          lint, typecheck, OpenAPI schema check, pytest (what CI runs)
#   make test-fast     the inner loop: no slow tests, no server processes (docs/ARCHITECTURE.md)
#   make frontend      build the web console (frontend/ -> frontend/dist/, served at /console/)
#   make schema        regenerate docs/openapi.yaml after an API change
#   make lock          re-resolve dependencies into constraints.txt
#   make clean-state CONFIRM=yes   delete .state/ (embedded databases, generated secrets)

VENV ?= .venv
PYTHON := $(VENV)/bin/python
# `python -m vectorplane exec -- CMD` runs CMD with the embedded PostgreSQL up (unless
# DATABASE_URL is set) and stops it afterwards if it started it.
WITH_DB := $(PYTHON) -m vectorplane exec --
SCHEMA := docs/openapi.yaml
SPECTACULAR := manage.py spectacular --validate --fail-on-warn
PYTEST_ARGS ?=

.PHONY: venv run test test-fast frontend frontend-check browser screenshots lint typecheck schema-check schema pytest lock clean-state bench-deps bench-console

# The venv is (re)installed only when the dependency files change.
VENV_STAMP := $(VENV)/.vectorplane-installed

venv: $(VENV_STAMP)

$(VENV_STAMP): pyproject.toml constraints.txt
	test -x $(PYTHON) || python3 -m venv $(VENV)
	$(PYTHON) -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

# What the benchmarks in bench/ need on top of the test environment.
bench-deps: venv
	$(PYTHON) -m pip install --quiet -c constraints.txt -e '.[dev,bench]'

# The console's speed in Chromium on a seeded tenant (bench/console.py, docs/BENCHMARKS.md);
# BENCH_ARGS passes flags, e.g. BENCH_ARGS="--runs 3 --pg-port 54442".
BENCH_ARGS ?=
bench-console: venv frontend browser
	$(PYTHON) bench/console.py $(BENCH_ARGS)

# The web console: npm installs when the lock file changed, and the build runs when anything
# in frontend/ (or the API schema its client is generated from) changed.
FRONTEND_STAMP := frontend/node_modules/.vectorplane-installed
FRONTEND_FILES := $(shell find frontend -path frontend/node_modules -prune -o -path frontend/dist -prune -o -type f -print 2>/dev/null)

$(FRONTEND_STAMP): frontend/package.json frontend/package-lock.json
	@command -v npm >/dev/null || { echo "error: the console needs Node.js >= 20.19 and npm (https://nodejs.org)" >&2; exit 1; }
	cd frontend && npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The built assets are compressed next to themselves (.gz, and .br when brotli is installed),
# which WhiteNoise sends to browsers that accept them (bench/console.py measures it).
frontend/dist/index.html: $(FRONTEND_STAMP) $(FRONTEND_FILES) $(SCHEMA) | venv
	cd frontend && npm run --silent build
	$(PYTHON) -m whitenoise.compress -q frontend/dist/assets
	touch $@

frontend: frontend/dist/index.html

# Type-check (tsc, strict), lint (eslint) and unit tests (vitest) of the console.
frontend-check: $(FRONTEND_STAMP)
	cd frontend && npm run --silent check

# The browser tests drive Debian's Chromium (a downloaded browser build cannot be fetched here).
browser:
	@test -x /usr/bin/chromium || { \
		echo "installing Debian's chromium for the browser tests (apt-get)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; }

run: venv frontend
	$(PYTHON) -m vectorplane run

# The console's screenshots in docs/console/ (docs/console.md), taken by its browser tests.
screenshots: venv frontend browser
	VECTORPLANE_CONSOLE_SCREENSHOTS=1 $(WITH_DB) $(VENV)/bin/pytest -q tests/console

# Steps run one after another, even under `make -j`.
test: venv
	$(MAKE) --no-print-directory lint
	$(MAKE) --no-print-directory typecheck
	$(MAKE) --no-print-directory schema-check
	$(MAKE) --no-print-directory frontend-check
	$(MAKE) --no-print-directory frontend
	$(MAKE) --no-print-directory browser
	$(MAKE) --no-print-directory pytest

lint: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports --no-cache

typecheck: venv
	$(VENV)/bin/mypy .

schema-check: venv
	@tmp=$$(mktemp --suffix=.yaml) && trap 'rm -f "$$tmp"' EXIT && \
	echo "$(WITH_DB) $(PYTHON) $(SPECTACULAR) --file $$tmp" && \
	$(WITH_DB) $(PYTHON) $(SPECTACULAR) --file "$$tmp" && \
	if ! diff -u $(SCHEMA) "$$tmp"; then \
		echo >&2; \
		echo "error: $(SCHEMA) is stale (or missing): run 'make schema' and commit it." >&2; \
		exit 1; \
	fi

schema: venv
	mkdir -p $(dir $(SCHEMA))
	$(WITH_DB) $(PYTHON) $(SPECTACULAR) --file $(SCHEMA)

pytest: venv
	$(WITH_DB) $(VENV)/bin/pytest $(PYTEST_ARGS)

# No `slow` test and no test that starts a server process (marked `server` by conftest.py);
# pure tests need no database, the in-process ones use the embedded PostgreSQL.
test-fast: venv
	$(VENV)/bin/ruff check .
	$(VENV)/bin/lint-imports
	$(WITH_DB) $(VENV)/bin/pytest -q -m "not slow and not server" $(PYTEST_ARGS)

# Resolve the newest versions allowed by pyproject.toml in a throw-away venv.
lock:
	@tmp=$$(mktemp -d) && trap 'rm -rf "$$tmp"' EXIT && \
	set -x && \
	python3 -m venv "$$tmp/venv" && \
	"$$tmp/venv/bin/python" -m pip install --quiet -e '.[dev,bench]' && \
	"$$tmp/venv/bin/python" -m pip freeze --exclude-editable > "$$tmp/constraints.txt" && \
	mv "$$tmp/constraints.txt" constraints.txt
	@echo "constraints.txt updated; 'make venv' installs it."

clean-state:
ifneq ($(CONFIRM),yes)
	@echo "This deletes .state/ (embedded PostgreSQL and Redis data, generated secrets)." >&2
	@echo "Run 'make clean-state CONFIRM=yes' to proceed." >&2
	@exit 1
else
	-VECTORPLANE_STATE_DIR=$(CURDIR)/.state $(PYTHON) -m vectorplane pg stop
	rm -rf .state
endif
