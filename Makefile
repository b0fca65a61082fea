# napari-cryorient: one command for the demo, one for the tests. Each sets itself up.
VENV ?= .venv
PYTHON ?= python3
# The CPU wheel of torch is installed first so that CPU machines never pull CUDA packages.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
OUT ?= results/demo

.PHONY: setup demo demo-quick test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

## demo: the whole method on the built-in sample (5 000 particles, 64 px, -12 dB):
## simulate, train, recover, resolve, align, reconstruct, FSC; results in $(OUT)/
demo: setup
	$(VENV)/bin/cryorient demo --out $(OUT)

demo-quick: setup
	$(VENV)/bin/cryorient demo --quick --out results/demo-quick

## test: the whole test suite (engine, I/O, CLI)
test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m benchmarks.reconstruct_quality
	$(PY) -m benchmarks.recovery_exact
	$(PY) -m benchmarks.method sample-12db quick
	$(PY) -m benchmarks.reconstruct_memory

clean:
	rm -rf $(VENV) results .pytest_cache
