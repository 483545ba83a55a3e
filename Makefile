# costguard — every target installs what it needs first, on a fresh clone too.
SHELL := /bin/bash
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
RUN := $(UV) run --frozen

.PHONY: install test lint format unit bench bench-load bench-soak run demo synth clean sam-env sam-validate sam-invoke sam-api

install: .venv/.installed node_modules/.installed

$(UV):
	python3 -m venv $(TOOLS)
	$(TOOLS)/bin/pip install --quiet --disable-pip-version-check "uv==$(UV_VERSION)"

.venv/.installed: $(UV) pyproject.toml uv.lock
	$(UV) sync --frozen
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund --loglevel=error
	touch $@

lint: install
	$(RUN) ruff format --check shared functions local infra tests bench clients/python
	$(RUN) ruff check shared functions local infra tests bench clients/python
	$(RUN) mypy

format: install
	$(RUN) ruff format shared functions local infra tests bench clients/python
	$(RUN) ruff check --fix shared functions local infra tests bench clients/python

## every test: unit (moto), integration (DynamoDB Local), property-based; then lint
test: install
	$(RUN) pytest
	$(MAKE) --no-print-directory lint

unit: install
	$(RUN) pytest tests/unit

## the whole product on http://127.0.0.1:8080 (COSTGUARD_PORT, COSTGUARD_HOST, COSTGUARD_ADMIN_KEY)
## on DynamoDB Local, persistent in COSTGUARD_DATA_DIR (default .data/; wipe: stop, rm -rf .data),
## with COSTGUARD_WORKERS API processes (default: the CPU count)
run: install
	$(RUN) python -m local

## realistic traffic against a running `make run` (COSTGUARD_ADMIN_KEY = the key it printed)
demo: install
	$(RUN) python -m local.demo

## the CloudFormation template and Lambda assets in cdk.out/ (no AWS account, no Docker; arm64
## wheels from PyPI once per lock). Deploy: see docs/infrastructure.md.
synth: install
	PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" npx --no-install cdk synth --quiet

## SAM over the synthesized template (`make synth` first; docs/local-sam.md): the env-vars file,
## `sam validate --lint`, `sam local invoke` (FN=api EVENT=events/api/health.json) and
## `sam local start-api` against `COSTGUARD_DDB_PORT=8000 make run`'s store (need Docker or Finch)
sam-env: install
	$(RUN) python -m local.sam env

sam-validate: install
	$(RUN) python -m local.sam validate

sam-invoke: install
	$(RUN) python -m local.sam invoke $(FN) $(EVENT)

sam-api: install
	$(RUN) python -m local.sam start-api

bench: install
	$(RUN) python -m bench

## the API under load over loopback HTTP, on the embedded store and on DynamoDB Local (several
## minutes; DURATION seconds of sustained load, default 60); results in bench/results/load.*
bench-load: install
	$(RUN) python -m bench load --duration $(or $(DURATION),60)

## `make run` on its default store: 10,000 guarded calls with 1 and 4 callers, then throughput
## with 1/2/4 workers (about ten minutes); results in bench/results/soak.*
bench-soak: install
	$(RUN) python -m bench soak

clean:
	rm -rf .venv $(TOOLS) node_modules cdk.out .pytest_cache .mypy_cache .ruff_cache
