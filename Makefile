# napari-cryorient: one command for the demo, one for the tests. Each sets itself up.
VENV ?= .venv
PYTHON ?= python3
# The CPU wheel of torch is installed first so that CPU machines never pull CUDA packages.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
OUT ?= results/demo

.PHONY: setup demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test]"
	touch $@

setup: $(VENV)/.installed

## demo: simulate the built-in sample (5 000 particles, 64 px, -12 dB, CTF, shifts),
## reconstruct it with the true poses and score it against the truth.
demo: setup
	$(VENV)/bin/cryorient simulate --sample pseudo-protein --n 5000 --box 64 --snr-db -12 \
		--ctf --shifts-A 4 --seed 0 --out $(OUT)
	$(VENV)/bin/cryorient reconstruct --star $(OUT)/particles.star --ctf-correction wiener \
		--half-maps --out $(OUT)/reconstruction.mrc
	$(VENV)/bin/cryorient fsc $(OUT)/reconstruction.mrc $(OUT)/volume.mrc \
		--json $(OUT)/fsc_vs_truth.json --png $(OUT)/fsc_vs_truth.png
	@echo "results are in $(OUT)/ (particles.mrcs/.star, volume.mrc, reconstruction*.mrc, fsc_vs_truth.png)"

## test: the whole test suite (engine, I/O, CLI)
test: setup
	$(PY) -m pytest

bench: setup
	$(PY) -m benchmarks.reconstruct_quality
	$(PY) -m benchmarks.reconstruct_memory

clean:
	rm -rf $(VENV) results .pytest_cache
