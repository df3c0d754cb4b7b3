# Two commands on a fresh machine: `make sim` (a navigation run) and `make test` (the test suite).
# Both create .venv and install into it idempotently; the CPU build of torch goes in first so
# pip never pulls a multi-GB CUDA build.
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
TORCH_CPU := torch==2.13.0
TORCH_INDEX ?=

.PHONY: sim test bench install

$(VENV)/.installed: pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV) || python3 -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip show torch >/dev/null 2>&1 || $(PY) -m pip install -q $(TORCH_CPU) $(TORCH_INDEX) \
		|| $(PY) -m pip install -q torch --index-url https://download.pytorch.org/whl/cpu
	$(PY) -m pip install -q -e ".[dev]"
	touch $@

install: $(VENV)/.installed

sim: install
	$(PY) run_sim.py

test: install
	$(PY) -m pytest -q -n 2 --durations=10

bench: install
	$(PY) benchmarks/env_step.py
	$(PY) benchmarks/policy_step.py
	$(PY) benchmarks/rollout.py
