# Two commands on a fresh machine: `make demo` and `make test`. Both create .venv on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
TORCH  ?= torch==2.13.0
# For an NVIDIA GPU: make demo TORCH_INDEX=https://download.pytorch.org/whl/cu124 TORCH=torch
TORCH_INDEX ?=

.PHONY: demo test test-slow benchmark clean-venv

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q $(if $(TORCH_INDEX),--index-url $(TORCH_INDEX)) "$(TORCH)"
	$(PY) -m pip install -q -e ".[test,baselines,bm4d]"
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/meddenoise demo --out out/demo

test: $(VENV)/.installed
	$(PY) -m pytest -m "not slow"

test-slow: $(VENV)/.installed
	$(PY) -m pytest -m slow

benchmark: $(VENV)/.installed
	$(VENV)/bin/meddenoise benchmark --out out/benchmark.json

clean-venv:
	rm -rf $(VENV)
