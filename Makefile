# The README's commands. Everything installs into .venv; torch is pinned first so that
# nothing later can pull a CUDA build.
PY ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo test lint bench clean

$(STAMP): pyproject.toml runtimes/python/pyproject.toml
	test -x $(BIN)/python || $(PY) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q torch==2.13.0
	$(BIN)/pip install -q -e ./runtimes/python -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/edgepack build

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: lint
	$(BIN)/pytest -q

bench: $(STAMP)
	$(BIN)/python scripts/bench_pipeline.py

clean:
	rm -rf .edgepack dist
