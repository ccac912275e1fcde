# The two commands of the README: `make demo` and `make test`. Both create .venv and install
# everything they need, so a fresh machine needs only Python 3.10+, a C++17 compiler and CMake.
PYTHON ?= python3
# torch first, pinned: on the project's machines this takes a CPU wheel that lies on disk, while an
# unpinned torch would pull a multi-GB CUDA build. fields3d itself asks for a range.
TORCH_SPEC ?= torch==2.13.0
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.fields3d-installed
CORE_SOURCES := $(shell find cuda -type f) CMakeLists.txt pyproject.toml

.PHONY: setup demo lint test bench clean

setup: $(STAMP)

$(PY):
	$(PYTHON) -m venv $(VENV)

# The build runs without isolation (its tools are installed into .venv first): an isolated build
# compiles against pybind11 in a new temporary folder each time, so every change to the core
# recompiled all of it (20+ minutes on 2 cores with CUDA); now ninja rebuilds what changed.
# FIELDS3D_CUDA_EMU=1 also builds fields3d._core_emu, the test module that runs the CUDA launchers
# on the host, so the CUDA parity tests run on machines without a GPU too (tests/conftest.py).
$(STAMP): $(PY) $(CORE_SOURCES)
	sh scripts/system-deps
	$(PY) -m pip install -q "$(TORCH_SPEC)"
	$(PY) -m pip install -q "scikit-build-core>=0.10" "pybind11>=2.12"
	FIELDS3D_CUDA_EMU=1 $(PY) -m pip install -q --no-build-isolation -e '.[test,poisson,generate,view,ray]'
	touch $@

demo: setup
	$(VENV)/bin/fields3d recon assets/scans/bunny.ply -o out/demo/bunny.ply --gt assets/meshes/stanford-bunny.obj

# Formatting and lint rules live in pyproject.toml ([tool.ruff]); `ruff format .` applies them.
lint: setup
	$(VENV)/bin/ruff format --check --quiet .
	$(VENV)/bin/ruff check --quiet .

test: lint
	$(PY) -m pytest -q

bench: setup
	$(PY) benchmarks/hash_grid.py
	$(PY) benchmarks/encoding_types.py
	$(PY) benchmarks/image_fit.py
	$(PY) benchmarks/marching_cubes.py
	$(PY) benchmarks/recon.py
	$(PY) benchmarks/render.py

clean:
	rm -rf build out .pytest_cache
