# The README's commands. Everything installs into .venv; torch is pinned first so that
# nothing later can pull a CUDA build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
JS_STAMP := runtimes/js/node_modules/.installed
# onnxruntime-genai's model builder (the LM exporter) in a folder of its own: it wants a newer
# transformers than optimum-onnx allows here (packager/export/genai_builder.txt says why).
GENAI_BUILDER := $(VENV)/genai-builder
GENAI_STAMP := $(GENAI_BUILDER)/.installed

.PHONY: demo test lint bench clean genai-builder

$(STAMP): pyproject.toml runtimes/python/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e './runtimes/python[sign]' -e '.[dev]'
	touch $(STAMP)

$(GENAI_STAMP): packager/export/genai_builder.txt $(STAMP)
	$(BIN)/pip install -q --no-deps --upgrade --target $(GENAI_BUILDER) -r packager/export/genai_builder.txt
	touch $@

genai-builder: $(GENAI_STAMP)

demo: $(STAMP)
	$(BIN)/edgepack build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

test: lint $(JS_STAMP) $(GENAI_STAMP)
	$(BIN)/pytest -q

# runtimes/js's node_modules. ONNXRUNTIME_NODE_INSTALL=skip: onnxruntime-node's install script
# would download from outside the npm registry; its tarball already ships the linux binaries.
$(JS_STAMP): runtimes/js/package.json runtimes/js/package-lock.json
	cd runtimes/js && ONNXRUNTIME_NODE_INSTALL=skip npm ci --no-audit --no-fund
	touch $@

bench: $(STAMP)
	$(BIN)/python scripts/bench_pipeline.py

clean:
	rm -rf .edgepack dist
