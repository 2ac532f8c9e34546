# Two commands matter: `make run` (the whole local stack) and `make test` (every test).
# Both create .venv with Python 3.11 and install the pinned requirements first.

PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PORT ?= 8000
WECHAT_PORT ?= 8001
DYNAMODB_PORT ?= 8002
WEBHOOK_PORT ?= 8003
export PORT WECHAT_PORT DYNAMODB_PORT WEBHOOK_PORT

.PHONY: run test unit integration e2e lint-code package lint-template fuzz bench reconcile clean

$(STAMP): requirements.txt requirements-dev.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	touch $(STAMP)

venv: $(STAMP)

run: $(STAMP)
	$(PY) -m devstack

test: $(STAMP)
	$(MAKE) lint-code
	$(PY) -m pytest -q -n 2 tests/unit tests/integration
	$(PY) -m pytest -q tests/e2e
	FUZZ_SEED=$${FUZZ_SEED:-20261123} $(PY) -m pytest -q tests/fuzz  # a fixed seed: CI is repeatable
	$(MAKE) lint-template

# The import contracts (.importlinter: layers, a pure domain, no dev code in the service) and the
# type checker (mypy.ini: strict on domain/ and store/).
lint-code: $(STAMP)
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

unit: $(STAMP)
	$(PY) -m pytest -q tests/unit

integration: $(STAMP)
	$(PY) -m pytest -q -n 2 tests/integration

e2e: $(STAMP)
	$(PY) -m pytest -q tests/e2e

# Deployment packaging (infra/README.md). PyPI only; no AWS credentials.
STAGE ?= dev
# Chalice needs a region only to name IAM service principals; the template itself is region-neutral.
PACKAGE_REGION ?= us-east-1

package: $(STAMP)
	$(PY) -m infra.merge_template --stage $(STAGE) --out build/$(STAGE)/merge-template.json
	rm -rf build/$(STAGE)/package
	AWS_DEFAULT_REGION=$(PACKAGE_REGION) $(VENV)/bin/chalice package --stage $(STAGE) \
		--merge-template build/$(STAGE)/merge-template.json build/$(STAGE)/package
	$(PY) -m infra.check_package build/$(STAGE)/package/sam.json

lint-template: $(STAMP)
	$(MAKE) package STAGE=dev
	$(MAKE) package STAGE=prod
	$(VENV)/bin/cfn-lint build/dev/package/sam.json build/prod/package/sam.json

# Schemathesis against a fresh local stack, every operation of its OpenAPI document (tests/fuzz).
# `make test` runs the same with FUZZ_EXAMPLES=25; FUZZ_SEED=<n> replays a run.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} FUZZ_COVERAGE=1 $(PY) -m pytest -v tests/fuzz

bench: $(STAMP)
	$(PY) -m bench.run --write

reconcile: $(STAMP)
	LOYALTY_DYNAMODB_ENDPOINT=http://127.0.0.1:$(DYNAMODB_PORT) AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
		$(PY) -m chalicelib.services.reconcile

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis .chalice/deployments
