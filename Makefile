# make test / make demo do the whole set-up on a fresh machine: .venv, the project (editable) and its test
# dependencies, then run. The install step reruns only when setup.py or pyproject.toml change (stamp file).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dfguard-installed

.PHONY: test demo lint bench-kernels bench-pipeline bench-perf clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): setup.py pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

demo: $(STAMP)
	$(BIN)/dfguard demo --out demo_output

lint: $(STAMP)
	$(BIN)/ruff check .

bench-kernels: $(STAMP)
	$(BIN)/python -m benchmarks.kernels

bench-pipeline: $(STAMP)
	$(BIN)/python -m benchmarks.pipeline

bench-perf: $(STAMP)
	$(BIN)/python -m benchmarks.perf

clean:
	rm -rf $(VENV) build *.egg-info
