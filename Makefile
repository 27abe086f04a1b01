# `make test` and `make demo` set everything up on a fresh machine: a virtual environment in .venv
# with torch 2.14.1 / torchvision 0.29.1 and this package installed in editable mode.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-stamp
DEMO_DIR ?= demo

# The oldest torch the package supports (pyproject.toml's lower bounds), in an environment of its own.
OLDEST := .venv-oldest
OLDEST_STAMP := $(OLDEST)/.installed-stamp
OLDEST_TORCH := torch==2.11.0 torchvision==0.26.0
# What smoke-oldest runs there: the tests marked `smoke` in these files (the model, training, exact
# resume, fp16 loss scaling, two ranks over gloo, export, eval).
SMOKE_FILES := tests/test_model.py tests/train/test_loop.py tests/train/test_precision.py \
	tests/train/test_distributed.py tests/test_export.py tests/test_evaluate.py

.PHONY: test lint demo venv clean smoke-oldest gpu-dry-run gpu-dry-run-oldest

venv: $(TEST_STAMP)

# The package and what the demo uses (ONNX export); the test tools only for lint and test.
$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q torch==2.14.1 torchvision==0.29.1
	$(BIN)/python -m pip install -q -e '.[onnx]'
	touch $(STAMP)

$(TEST_STAMP): $(STAMP)
	$(BIN)/python -m pip install -q -e '.[test]'
	touch $(TEST_STAMP)

lint: $(TEST_STAMP)
	$(BIN)/ruff check src tests benchmarks
	$(BIN)/ruff format --check src tests benchmarks

test: lint
	$(BIN)/python -m pytest

$(OLDEST_STAMP): pyproject.toml
	test -x $(OLDEST)/bin/python || $(PYTHON) -m venv $(OLDEST)
	$(OLDEST)/bin/python -m pip install -q $(OLDEST_TORCH)
	$(OLDEST)/bin/python -m pip install -q -e '.[onnx]' pytest
	$(OLDEST)/bin/python -c 'import torch, torchvision; print("oldest:", torch.__version__, torchvision.__version__)'
	touch $(OLDEST_STAMP)

# The smoke subset on the oldest supported torch (creates .venv-oldest on first use).
smoke-oldest: $(OLDEST_STAMP)
	$(OLDEST)/bin/python -m pytest -m smoke $(SMOKE_FILES)

# benchmarks/gpu.sh's CPU dry run (every phase at toy sizes: checks the script, measures nothing),
# with .venv's torch and with the oldest.
gpu-dry-run: $(TEST_STAMP)
	GPU_SH_DEVICE=cpu PYTHON=$(BIN)/python bash benchmarks/gpu.sh

gpu-dry-run-oldest: $(OLDEST_STAMP)
	GPU_SH_DEVICE=cpu PYTHON=$(OLDEST)/bin/python bash benchmarks/gpu.sh

demo: $(STAMP)
	$(BIN)/inception3 demo --out $(DEMO_DIR)

clean:
	rm -rf $(VENV) $(OLDEST) demo .pytest_cache .ruff_cache
