# AlgoMirror: the two commands are `make run` and `make test` (see README.md).
SHELL := /bin/bash
export UV_PYTHON_DOWNLOADS := never
export UV_LINK_MODE := copy

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
HOST ?= 127.0.0.1
PORT ?= 8000
PYTHON_SOURCES := $(wildcard app paperbroker config.py app.py init_db.py bench tests)

.PHONY: run test lint typecheck pytest css setup clean paperbroker services

## Set up everything (once), apply migrations, start the paper broker and serve the app.
run: setup
	$(UV) run python init_db.py
	HOST=$(HOST) PORT=$(PORT) ./scripts/run_dev.sh

## Lint, type-check and run the whole test suite (SQLite, or TEST_DATABASE_URL when set).
test: setup lint typecheck pytest

setup: .venv/.synced node_modules/.synced app/static/css/compiled.css

.tools/bin/uv:
	python3 -m venv .tools
	.tools/bin/pip install --quiet uv

.venv/.synced: pyproject.toml uv.lock .python-version | $(UV)
	$(UV) sync --frozen
	touch $@

node_modules/.synced: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

app/static/css/compiled.css: node_modules/.synced tailwind.config.js app/static/src/input.css $(shell find app/templates app/static/js -type f 2>/dev/null)
	npm run --silent build-css

css: node_modules/.synced
	npm run --silent build-css

lint: .venv/.synced
	$(UV) run ruff check $(PYTHON_SOURCES)

typecheck: .venv/.synced
	$(UV) run mypy app paperbroker config.py init_db.py

pytest: .venv/.synced
	$(UV) run pytest $(PYTEST_ARGS)

paperbroker: .venv/.synced
	$(UV) run python -m paperbroker --accounts 3

clean:
	rm -rf .venv .tools node_modules app/static/css/compiled.css .pytest_cache .mypy_cache .ruff_cache
