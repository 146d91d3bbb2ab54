# Two entry points (see README): `make demo` and `make test`.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
DEMO_WS ?= demo_workspace
DEMO_LEGACY ?= demo_legacy_workspace
PORT ?= 8888
# jupyter refuses to run as root without this flag (containers, CI machines)
ROOT_FLAG := $(if $(filter 0,$(shell id -u)),--allow-root,)

.PHONY: install build-js chromium demo demo-data lint test test-py test-js test-notebooks test-browser screenshots bench clean

$(STAMP): pyproject.toml package.json package-lock.json
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	npm install --no-audit --no-fund --no-save
	npm run build
	$(PY) -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

build-js: $(STAMP)
	npm run build

# Debian's chromium for the browser tests (Playwright cannot download browsers here).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else sudo apt-get update -qq && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; fi; }
	@chromium --version

demo-data: install
	$(PY) -m n4a_widgets.demo $(DEMO_WS) --legacy $(DEMO_LEGACY)

demo: demo-data
	$(VENV)/bin/jupyter lab --ServerApp.port=$(PORT) --ServerApp.ip=127.0.0.1 $(ROOT_FLAG) notebooks/00_quickstart.ipynb

lint: install
	$(VENV)/bin/ruff check n4a_widgets tests $(wildcard bench)
	$(VENV)/bin/mypy
	npx eslint js
	npx tsc -p jsconfig.json

test-js: install
	npx vitest run

test-py: install
	$(VENV)/bin/pytest -q -m "not browser" tests

test-notebooks: install
	$(VENV)/bin/pytest -q --nbval-lax -p no:cacheprovider notebooks/

# JupyterLab, Notebook 7 and marimo (marimo run) in headless Chromium; leaves a screenshot of
# every widget in light and dark in test-results/screenshots/ (the run prints where).
test-browser: install chromium
	$(VENV)/bin/pytest -q -m browser tests

# Only the contrast + screenshot tests (every widget, light and dark, three front-ends).
screenshots: install chromium
	npm run build
	$(VENV)/bin/pytest -q -m browser tests/browser/test_themes.py tests/browser/test_notebook7.py tests/browser/test_marimo.py

# Everything CI runs: lint, JS unit tests, Python tests, notebooks, browser tests.
test: install chromium
	npm run build
	$(MAKE) lint
	$(MAKE) test-js
	$(VENV)/bin/pytest -q -m "not browser" tests
	$(VENV)/bin/pytest -q --nbval-lax -p no:cacheprovider notebooks/
	$(VENV)/bin/pytest -q -m browser tests

bench: install
	for b in bench/bench_*.py; do $(PY) $$b || exit 1; done

clean:
	rm -rf $(VENV) node_modules n4a_widgets/static/*.js n4a_widgets/static/*.css $(DEMO_WS) $(DEMO_LEGACY)
