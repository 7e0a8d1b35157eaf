# mrct: two commands, `make demo` and `make test`. Both create .venv when it is missing.
#
# torch: on a machine without an NVIDIA GPU we install the CPU build (TORCH_CPU_SPEC); an
# unpinned `pip install torch` on Linux pulls a multi-GB CUDA build. With `nvidia-smi`
# present we install TORCH_GPU_SPEC from PyPI (CUDA build). Override either, e.g.
#   make test TORCH_CPU_SPEC="torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu"

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
TORCH_CPU_SPEC ?= torch==2.13.0
TORCH_GPU_SPEC ?= torch
EXTRAS ?= dev
STAMP := $(VENV)/.mrct-installed
PYTEST_ARGS ?=

.PHONY: help venv warmup demo test test-slow test-all test-cuda lint format bench clean clean-cache

help:
	@echo "make demo      set up .venv and run the main job on built-in data (writes demo_out/)"
	@echo "make test      set up .venv and run the test suite (CUDA kernels under the simulator)"
	@echo "make test-slow run only the tests marked slow (reader fuzzing, >= 300 cases per reader)"
	@echo "make test-all  also run tests marked slow"
	@echo "make lint      ruff check + format check"
	@echo "make bench     run benchmarks/ and rewrite docs/benchmarks.md (needs the bench extra)"

$(PY):
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(PY)
	$(PIP) install --quiet --upgrade pip
	@if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then \
		echo "NVIDIA GPU found: installing $(TORCH_GPU_SPEC)"; \
		$(PIP) install --quiet $(TORCH_GPU_SPEC); \
	else \
		echo "no NVIDIA GPU: installing the CPU build $(TORCH_CPU_SPEC)"; \
		$(PIP) install --quiet $(TORCH_CPU_SPEC); \
	fi
	$(PIP) install --quiet -e ".[$(EXTRAS)]"
	$(VENV)/bin/mrct warmup --no-progress
	@touch $(STAMP)

venv: $(STAMP)

# compile every CPU kernel into Numba's disk cache (done once by the set-up; rerun after
# editing a kernel, or with NUMBA_CACHE_DIR set for a read-only installation)
warmup: $(STAMP)
	$(VENV)/bin/mrct warmup

demo: $(STAMP)
	$(VENV)/bin/mrct demo --out demo_out --force

test: $(STAMP)
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} NUMBA_ENABLE_CUDASIM=$${NUMBA_ENABLE_CUDASIM:-1} $(PY) -m pytest $(PYTEST_ARGS)

test-slow: $(STAMP)
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} NUMBA_ENABLE_CUDASIM=$${NUMBA_ENABLE_CUDASIM:-1} $(PY) -m pytest -m slow $(PYTEST_ARGS)

test-all: $(STAMP)
	OMP_WAIT_POLICY=$${OMP_WAIT_POLICY:-PASSIVE} NUMBA_ENABLE_CUDASIM=$${NUMBA_ENABLE_CUDASIM:-1} $(PY) -m pytest -m "" $(PYTEST_ARGS)

# On a machine with a real GPU: run the CUDA tests on the device, not the simulator.
test-cuda: $(STAMP)
	NUMBA_ENABLE_CUDASIM=0 $(PY) -m pytest -m cuda $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests benchmarks
	$(VENV)/bin/ruff format --check src tests benchmarks

format: $(STAMP)
	$(VENV)/bin/ruff format src tests benchmarks
	$(VENV)/bin/ruff check --fix src tests benchmarks

# Peers live in their own environment (.venv-bench) so they never disturb .venv. deepinv needs
# manual steps (see benchmarks/README.md); without it its rows say "unavailable".
bench:
	$(MAKE) venv VENV=.venv-bench EXTRAS=dev,bench
	.venv-bench/bin/python benchmarks/run_all.py

clean-cache:
	find src -name "*.nbi" -o -name "*.nbc" | xargs rm -f

clean: clean-cache
	rm -rf $(VENV) demo_out .pytest_cache build *.egg-info src/*.egg-info
