# costguard — every target installs what it needs first, on a fresh clone too.
SHELL := /bin/bash
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
RUN := $(UV) run --frozen

.PHONY: install browser test lint format unit bench bench-load run run-ddblocal demo synth clean prices prices-map

install: .venv/.installed node_modules/.installed prices-map

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

## the pinned LiteLLM price map (prices/config.json), fetched once into .cache/prices/: only the
## wheel is downloaded and only its JSON is read (LiteLLM is never installed nor imported)
prices-map: .venv/.installed $(UV)
	$(RUN) python -m prices fetch

## regenerate shared/costguard/pricing/catalog.json from the pinned map + prices/overrides.json
prices: install
	$(RUN) python -m prices

lint: install
	$(RUN) ruff format --check shared functions local infra tests bench clients/python prices
	$(RUN) ruff check shared functions local infra tests bench clients/python prices
	$(RUN) mypy

format: install
	$(RUN) ruff format shared functions local infra tests bench clients/python prices
	$(RUN) ruff check --fix shared functions local infra tests bench clients/python prices

## the console's browser tests drive the machine's Chromium (Debian packages; never a
## browser downloaded by Playwright): installed here when missing (CI runs as root with apt)
CHROMIUM ?= /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

browser:
	@test -x $(CHROMIUM) || { \
	  echo "installing chromium and chromium-driver (Debian packages) for the console's browser tests"; \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium chromium-driver; }

## every test: unit (moto), integration (DynamoDB Local), property-based, the console in
## headless Chromium; then lint
test: install browser
	COSTGUARD_CHROMIUM=$(CHROMIUM) $(RUN) pytest
	$(MAKE) --no-print-directory lint

unit: install
	$(RUN) pytest tests/unit

## the whole product on http://127.0.0.1:8080 (COSTGUARD_PORT, COSTGUARD_HOST, COSTGUARD_ADMIN_KEY)
run: install
	$(RUN) python -m local

## the same, on DynamoDB Local (started and stopped for you) instead of the embedded store
run-ddblocal: install
	$(RUN) python -m local --ddblocal

## realistic traffic against a running `make run` (COSTGUARD_ADMIN_KEY = the key it printed)
demo: install
	$(RUN) python -m local.demo

## the CloudFormation template and Lambda assets in cdk.out/ (no AWS account, no Docker; arm64
## wheels from PyPI once per lock). Deploy: see docs/infrastructure.md.
synth: install
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" npx --no-install cdk synth --quiet

bench: install
	$(RUN) python -m bench

## the API under load over loopback HTTP, on the embedded store and on DynamoDB Local (several
## minutes; DURATION seconds of sustained load, default 60); results in bench/results/load.*
bench-load: install
	$(RUN) python -m bench load --duration $(or $(DURATION),60)

clean:
	rm -rf .venv $(TOOLS) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
