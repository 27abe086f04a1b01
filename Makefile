# `make test` and `make demo` set everything up on a fresh machine: a virtual environment in .venv
# with torch 2.14.1 / torchvision 0.29.1 and this package installed in editable mode.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed-stamp
TEST_STAMP := $(VENV)/.test-stamp
DEMO_DIR ?= demo

.PHONY: test lint demo venv clean

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

demo: $(STAMP)
	$(BIN)/inception3 demo --out $(DEMO_DIR)

clean:
	rm -rf $(VENV) demo .pytest_cache .ruff_cache
