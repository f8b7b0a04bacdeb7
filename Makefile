# AlgoMirror: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy
# Start-up cost (docs/deployment.md, "Start-up and memory"): a process that compiles every module
# from source takes 4-9 s to reach create_app(); with bytecode about 1 s. The virtual environment
# gets bytecode once, at sync (--compile-bytecode below; not [tool.uv] compile-bytecode, which
# makes every `uv run` re-walk site-packages, about 1 s each). The project's own code (app/,
# paperbroker/, installed editable) gets __pycache__ written by the first process that imports
# it, so make's processes must be allowed to write bytecode even where the environment forbids it.
unexport PYTHONDONTWRITEBYTECODE

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000
CHART_JS := app/static/vendor/lightweight-charts.standalone.production.js
PYTHON_SOURCES := $(wildcard app paperbroker config.py app.py init_db.py bench tests)

.PHONY: help run test test-stress lint typecheck pytest css setup bytecode clean paperbroker services

## Set up everything (once), apply migrations, start the paper broker and serve the app.
run: setup
	$(UV) run python init_db.py
	HOST=$(HOST) PORT=$(PORT) ./scripts/run_dev.sh

## Lint, type-check and run the whole test suite (SQLite, or TEST_DATABASE_URL when set).
test: setup lint typecheck pytest

## The whole test suite (as make test runs it) while two CPU-burning processes compete for the CPU.
test-stress: setup
	@burners=(); \
	stop_burners() { kill "$${burners[@]}" 2>/dev/null || true; wait "$${burners[@]}" 2>/dev/null || true; }; \
	trap stop_burners EXIT; trap 'exit 130' INT; trap 'exit 143' TERM; \
	for _ in 1 2; do python3 -c 'while True: pass' & burners+=($$!); done; \
	echo "test-stress: 2 CPU burners running (pids $${burners[*]}), load $$(cut -d' ' -f1-3 /proc/loadavg)"; \
	$(UV) run pytest $(PYTEST_ARGS)

## List the make targets.
help:
	@awk '/^## /{doc=substr($$0,4); next} /^[a-z][a-z-]*:/{if(doc){split($$0,t,":"); printf "  make %-12s %s\n", t[1], doc}; doc=""} !/^## /{doc=""}' $(MAKEFILE_LIST)

setup: .venv/.synced bytecode node_modules/.synced app/static/css/compiled.css $(CHART_JS)

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock .python-version | $(UV)
	$(UV) sync --frozen --compile-bytecode
	touch $@

# The project's own modules: compileall skips every file whose bytecode is current (milliseconds).
bytecode: .venv/.synced
	@$(UV) run python -m compileall -q app paperbroker config.py app.py init_db.py >/dev/null || true

node_modules/.synced: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

# The payoff chart's library (lightweight-charts 5, Apache-2.0), served from app/static/vendor/:
# copied from node_modules at setup (version pinned by package-lock.json), never committed.
$(CHART_JS): node_modules/.synced
	mkdir -p $(@D)
	cp node_modules/lightweight-charts/dist/lightweight-charts.standalone.production.js $@

app/static/css/compiled.css: node_modules/.synced tailwind.config.js app/static/src/input.css $(shell find app/templates app/static/js -type f 2>/dev/null)
	npm run --silent build-css

## Rebuild the CSS (Tailwind + daisyUI).
css: node_modules/.synced
	npm run --silent build-css

## Ruff (with bugbear) over the Python sources.
lint: .venv/.synced
	$(UV) run ruff check $(PYTHON_SOURCES)

## mypy over app, paperbroker and the entry points.
typecheck: .venv/.synced
	$(UV) run mypy app paperbroker config.py init_db.py

## Only the tests (PYTEST_ARGS="tests/test_x.py -x" to narrow them).
pytest: .venv/.synced
	$(UV) run pytest $(PYTEST_ARGS)

## The paper broker alone, with three accounts.
paperbroker: .venv/.synced
	$(UV) run python -m paperbroker --accounts 3

## Remove the environment, node modules and caches.
clean:
	rm -rf .venv .tools node_modules app/static/css/compiled.css app/static/vendor .pytest_cache .mypy_cache .ruff_cache
