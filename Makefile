# Two entry points for a fresh machine: `make demo` and `make test`.
# Each bootstraps .venv by itself; torch==2.13.0 (the local CPU wheel) goes in first so pip never
# resolves a multi-GB CUDA build for the project's `torch>=2.1,<3` requirement.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
EXTRAS ?= dev,litert,openvino,executorch
FLEETNAS_DATA_DIR ?= $(abspath ../shared/data)
export FLEETNAS_DATA_DIR

.PHONY: demo test lint bench clean install

install: $(STAMP)

$(STAMP): pyproject.toml Makefile
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check torch==2.13.0
	$(PY) -m pip install -q --disable-pip-version-check -e '.[$(EXTRAS)]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/fleetnas demo

test: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m pytest -q -n 2 --dist loadfile

lint: $(STAMP)
	$(PY) -m ruff check src tests benchmarks
	$(PY) -m ruff format --check src tests benchmarks

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache
