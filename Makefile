# costguard — every target installs what it needs first, on a fresh clone too.
SHELL := /bin/bash
UV_VERSION := 0.13.8
TOOLS := .tools
UV := $(TOOLS)/bin/uv
RUN := $(UV) run --frozen

.PHONY: install browser test lint format unit openapi bench bench-load bench-soak run demo synth clean prices prices-map
.PHONY: bootstrap deploy diff destroy smoke sam-env sam-validate sam-invoke sam-api

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

## docs/openapi.json, the API's reference in the repository, written again from the code
openapi: install
	COSTGUARD_WRITE_OPENAPI=1 $(RUN) pytest -q tests/api/test_openapi.py -k repository

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
	$(CDK) synth --quiet

## AWS: the account and region of your credentials (AWS_PROFILE, AWS_REGION / AWS_DEFAULT_REGION,
## or the profile's region); CDK_ARGS for context, e.g. CDK_ARGS="-c costguard:alarm_emails=a@b.c".
## Step by step, from an empty account: docs/infrastructure.md.
CDK := PATH="$(CURDIR)/$(TOOLS)/bin:$$PATH" npx --no-install cdk

## once per account and region: the CDK's staging bucket and roles
bootstrap: install
	$(CDK) bootstrap $(CDK_ARGS)

## build the assets and deploy the stack (asks before widening IAM)
deploy: install
	$(CDK) deploy --require-approval broadening --outputs-file cdk.out/outputs.json $(CDK_ARGS)

## what a deploy would change
diff: install
	$(CDK) diff $(CDK_ARGS)

## delete the stack (the ledger table and the alerts topic's KMS key are kept: see the docs)
destroy: install
	$(CDK) destroy $(CDK_ARGS)

## post-deploy check: make smoke URL=<ApiUrl output> KEY=<admin key>
smoke: install
	@test -n "$(URL)" -a -n "$(KEY)" || { echo "usage: make smoke URL=https://… KEY=<admin key>"; exit 2; }
	COSTGUARD_SMOKE_KEY="$(KEY)" $(RUN) python -m infra.smoke "$(URL)"

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
