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

.PHONY: run test unit integration e2e lint-code kit kit-types docs-assets console-assets node-tools browser package lint-template \
	fuzz bench bench-query load soak load-ninety load-selftest reconcile clean

$(STAMP): requirements.txt requirements-dev.txt pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps --no-build-isolation -e .  # loyalty-admin (pyproject.toml)
	touch $(STAMP)

venv: $(STAMP)

# What the kit's Node tests and the browser tests need, installed when missing (we are root; the
# machine's package registries only): Node and npm from Debian, the pinned npm tools (`npm ci`,
# no install scripts), Debian's chromium for Playwright (which never downloads a browser here).
APT_INSTALL := DEBIAN_FRONTEND=noninteractive apt-get -o DPkg::Lock::Timeout=600 install -y --no-install-recommends
NODE_TOOLS := tools/node_modules/.installed
CHROMIUM := /usr/bin/chromium
DOCS_ASSETS := swagger-ui-bundle.js swagger-ui.css LICENSE NOTICE

$(NODE_TOOLS): tools/package.json tools/package-lock.json
	@command -v node >/dev/null && command -v npm >/dev/null || { apt-get update && $(APT_INSTALL) nodejs npm; }
	cd tools && npm ci --ignore-scripts --no-audit --no-fund
	touch $@

node-tools: $(NODE_TOOLS)

$(CHROMIUM):
	apt-get update
	$(APT_INSTALL) chromium

# A font with Chinese glyphs, so the console's screenshots (build/artifacts/) are readable.
CJK_FONT := /usr/share/fonts/truetype/wqy/wqy-zenhei.ttc
$(CJK_FONT):
	apt-get update
	$(APT_INSTALL) fonts-wqy-zenhei

browser: $(CHROMIUM) $(CJK_FONT)

run: $(STAMP)
	$(PY) -m devstack

test: $(STAMP) $(NODE_TOOLS) $(CHROMIUM) $(CJK_FONT)
	$(MAKE) lint-code
	$(PY) -m pytest -q -n 2 tests/unit tests/integration
	$(PY) -m pytest -q tests/e2e
	$(MAKE) kit
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

e2e: $(STAMP) $(CHROMIUM) $(CJK_FONT)
	$(PY) -m pytest -q tests/e2e

# The mini-program kit (miniprogram/, tools/): Node's test runner, with the client against a
# local stack of its own, the types drift check and the Swagger UI files' check.
kit: $(STAMP) $(NODE_TOOLS)
	cd tools && LOYALTY_PYTHON=../$(PY) node with-stack.mjs node --test --test-reporter=spec test/*.test.mjs

# Regenerates miniprogram/types/api.d.ts from a fresh local stack's /openapi.json.
kit-types: $(STAMP) $(NODE_TOOLS)
	cd tools && LOYALTY_PYTHON=../$(PY) node gen-types.mjs --write

# Copies Swagger UI's files from the pinned swagger-ui-dist into chalicelib/ (served at /docs).
docs-assets: $(NODE_TOOLS)
	cp $(addprefix tools/node_modules/swagger-ui-dist/,$(DOCS_ASSETS)) chalicelib/api/swagger_ui/

# Copies ECharts (the pinned npm package's dist file, licence, notice) into chalicelib/console/
# (served at /console/echarts.min.js: the console needs no CDN).
console-assets: $(NODE_TOOLS)
	cp tools/node_modules/echarts/dist/echarts.min.js chalicelib/console/echarts.min.js
	cp tools/node_modules/echarts/LICENSE chalicelib/console/ECHARTS-LICENSE
	cp tools/node_modules/echarts/NOTICE chalicelib/console/ECHARTS-NOTICE

# Deployment packaging (infra/README.md). PyPI only; no AWS credentials.
STAGE ?= dev
# Chalice needs a region only to name IAM service principals; the template itself is region-neutral.
PACKAGE_REGION ?= us-east-1

package: $(STAMP)
	$(PY) -m infra.merge_template --stage $(STAGE) --out build/$(STAGE)/merge-template.json
	rm -rf build/$(STAGE)/package
	AWS_DEFAULT_REGION=$(PACKAGE_REGION) $(VENV)/bin/chalice package --stage $(STAGE) \
		--merge-template build/$(STAGE)/merge-template.json build/$(STAGE)/package
	$(PY) -m infra.bytecode build/$(STAGE)/package  # .pyc in the zips: cold starts compile nothing
	$(PY) -m infra.check_package build/$(STAGE)/package/sam.json

# checkov has its own venv: its dependency pins clash with the app's (infra/README.md, "Checks").
CHECKOV_VENV := .venv-checkov
CHECKOV_STAMP := $(CHECKOV_VENV)/.installed-3.3.30
$(CHECKOV_STAMP):
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(CHECKOV_VENV)/bin/python -m pip install --quiet checkov==3.3.30
	touch $(CHECKOV_STAMP)

lint-template: $(STAMP) $(CHECKOV_STAMP)
	$(MAKE) package STAGE=dev
	$(MAKE) package STAGE=prod
	$(VENV)/bin/cfn-lint build/dev/package/sam.json build/prod/package/sam.json
	$(PY) -m infra.checkov_gate --checkov $(CHECKOV_VENV)/bin/checkov build/dev/package/sam.json build/prod/package/sam.json

# Schemathesis against a fresh local stack, every operation of its OpenAPI document (tests/fuzz).
# `make test` runs the same with FUZZ_EXAMPLES=25; FUZZ_SEED=<n> replays a run.
fuzz: $(STAMP)
	FUZZ_EXAMPLES=$${FUZZ_EXAMPLES:-500} FUZZ_COVERAGE=1 $(PY) -m pytest -v tests/fuzz

bench: $(STAMP)
	$(MAKE) package STAGE=dev  # the import-time figure measures the packaged zips, bytecode included
	$(PY) -m bench.run --write
	$(PY) -m bench.insight  # the analytics path (printed; issue 15)
	$(PY) -m bench.query_scale --write
	$(PY) -m bench.jobs --write  # daily jobs on 50,000 members (bench/JOBS.md)

# Query time against table size in the embedded DynamoDB (bench/QUERY.md).
bench-query: $(STAMP)
	$(PY) -m bench.query_scale --write

# Load and soak (bench/load, results in bench/LOAD.md): each starts its own local stack on free ports,
# seeds 10,000 members, runs the mixed profile with Locust, checks the invariants, then the bare
# boto3 baseline. LOAD_SECONDS / SOAK_SECONDS set the duration (90 / 600).
load: $(STAMP)
	$(PY) -m bench.load --profile load --seconds $${LOAD_SECONDS:-90} --write

soak: $(STAMP)
	$(PY) -m bench.load --profile soak --seconds $${SOAK_SECONDS:-600} --write

# The reference profile of issue 19: 300 members, 16 clients, 90 s. MIX=first-wave: the issue's
# first-wave mix (no coupons or stored value), recorded in its own section `ninety-first-wave`.
load-ninety: $(STAMP)
	$(PY) -m bench.load --profile ninety --mix $(or $(MIX),full) --write

# The checks against a stack whose transactions lose the account's version guard: they must fail.
load-selftest: $(STAMP)
	$(PY) -m bench.load --profile selftest --write

reconcile: $(STAMP)
	LOYALTY_DYNAMODB_ENDPOINT=http://127.0.0.1:$(DYNAMODB_PORT) AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing \
		$(PY) -m chalicelib.services.reconcile

clean:
	rm -rf $(VENV) build .pytest_cache .hypothesis .chalice/deployments
