# napari-cryorient: one command for the demo, one for the tests. Each sets itself up.
VENV ?= .venv
PYTHON ?= python3
# The CPU wheel of torch is installed first so that CPU machines never pull CUDA packages.
TORCH_SPEC ?= torch==2.13.0
PY := $(VENV)/bin/python
OUT ?= results/demo

.PHONY: setup system-deps demo demo-quick gui screenshots reliability test bench clean

# Widget tests need an X server with OpenGL (Xvfb + Mesa). Installed with apt when missing
# and possible (root on Debian/Ubuntu); elsewhere install them yourself, see README.
APT_PACKAGES = xvfb xauth libgl1-mesa-dri libglx-mesa0 libegl1 libxkbcommon-x11-0 libxcb-icccm4 \
	libxcb-image0 libxcb-keysyms1 libxcb-randr0 libxcb-render-util0 libxcb-xinerama0 \
	libxcb-xfixes0 libxcb-shape0 libxcb-cursor0 libdbus-1-3

system-deps:
	@if command -v dpkg >/dev/null 2>&1 && dpkg -s $(APT_PACKAGES) >/dev/null 2>&1; then :; \
	elif ! command -v dpkg >/dev/null 2>&1 && command -v Xvfb >/dev/null 2>&1; then :; \
	elif [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
		echo "installing Xvfb and OpenGL libraries (apt)"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $(APT_PACKAGES) >/dev/null; \
	else echo "warning: Xvfb not found; widget tests will fail (install: $(APT_PACKAGES))"; fi

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet "$(TORCH_SPEC)"
	$(PY) -m pip install --quiet -e ".[test,bench]"
	touch $@

setup: system-deps $(VENV)/.installed

## demo: the whole method on the built-in sample (5 000 particles, 64 px, -12 dB):
## simulate, train, recover, resolve, align, reconstruct, FSC; results in $(OUT)/
demo: setup
	$(VENV)/bin/cryorient demo --out $(OUT)

demo-quick: setup
	$(VENV)/bin/cryorient demo --quick --out results/demo-quick

## gui: napari with every cryorient widget docked and the sample map loaded
gui: setup
	$(VENV)/bin/cryorient gui

## screenshots: re-create the user-guide screenshots (docs/images) from a real viewer
screenshots: setup
	xvfb-run -a -s "-screen 0 1600x1000x24" $(PY) docs/make_screenshots.py

## reliability: re-run the fault-injection cases and rewrite docs/reliability.md
reliability: setup
	$(PY) docs/make_reliability.py

## test: the whole test suite (engine, I/O, CLI, widgets under Xvfb)
test: setup
	$(PY) -m pytest

## bench: every benchmark at its default (small) size; bench-NAME: one of them
## (e.g. make bench-noise_sweep ARGS="--size full --volumes sample ribosome")
BENCHMARKS = recovery_exact noise_sweep common_lines throughput reconstruct_quality paper_comparison
bench: $(addprefix bench-,$(BENCHMARKS))

bench-%: setup
	$(VENV)/bin/cryorient benchmark $* $(ARGS)

clean:
	rm -rf $(VENV) results .pytest_cache
