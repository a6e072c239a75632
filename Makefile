# make test / make demo do the whole set-up on a fresh machine: .venv, the project (editable) and its test
# dependencies, then run. The install step reruns only when setup.py or pyproject.toml change (stamp file).

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.dfguard-installed

.PHONY: test test-fast demo lint bench-kernels bench-faces bench-scenes bench-pipeline bench-perf bench-memory \
	gpu-check gpu-check-dry clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(STAMP): setup.py pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

test: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest

# the inner loop: unit tests only (no training, no tritonserver), a few minutes
test-fast: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/pytest -m "not slow and not integration"

demo: $(STAMP)
	$(BIN)/dfguard demo --out demo_output

lint: $(STAMP)
	$(BIN)/ruff check .

bench-kernels: $(STAMP)
	$(BIN)/python -m benchmarks.kernels

bench-faces: $(STAMP)
	$(BIN)/python -m benchmarks.faces

bench-scenes: $(STAMP)
	$(BIN)/python -m benchmarks.scenes

bench-pipeline: $(STAMP)
	$(BIN)/python -m benchmarks.pipeline

bench-perf: $(STAMP)
	$(BIN)/python -m benchmarks.perf

bench-memory: $(STAMP)
	$(BIN)/python -m benchmarks.memory

# On a bare GPU machine: no venv, no install, the checkout's own modules (see benchmarks/gpu_check.py).
GPU_CHECK_OUT ?= benchmarks/gpu_check
gpu-check:
	PYTHONPATH=. $(PYTHON) -m benchmarks.gpu_check --out $(GPU_CHECK_OUT)

gpu-check-dry: $(STAMP)
	$(BIN)/python -m benchmarks.gpu_check --dry-run --out $(GPU_CHECK_OUT)-dry

clean:
	rm -rf $(VENV) build *.egg-info
