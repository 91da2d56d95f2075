# One obvious entry per task. Every target creates .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test check lint typecheck unit demo bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## The README's test command: lint, types, then the whole suite.
test: check unit

check: lint typecheck

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

unit: $(STAMP)
	$(PY) -m pytest -n 2 -q

## The README's first command: the main job on the embedded default, offline.
demo: $(STAMP)
	$(PY) -m llmcassette demo

# mitmproxy, the proxy benchmark's baseline, pins libraries of its own: it gets a venv of its own.
MITM_VENV ?= .venv-mitm
$(MITM_VENV)/bin/mitmdump:
	python3 -m venv $(MITM_VENV)
	$(MITM_VENV)/bin/python -m pip install --quiet 'mitmproxy>=11,<12'

# The suite-path bench measures vcrpy and cassetter beside llmcassette; cassetter's pytest plugin
# clashes with pytest-recording's options, so the peers get a venv of their own too.
BENCH_VENV ?= .venv-bench
$(BENCH_VENV)/.installed-stamp: pyproject.toml
	test -x $(BENCH_VENV)/bin/python || python3 -m venv $(BENCH_VENV)
	$(BENCH_VENV)/bin/python -m pip install --quiet -e '.[bench]'
	touch $@

bench: $(STAMP) $(MITM_VENV)/bin/mitmdump $(BENCH_VENV)/.installed-stamp
	$(PY) bench/run.py
	$(PY) bench/proxy.py
	$(BENCH_VENV)/bin/python bench/suite_path.py

clean:
	rm -rf $(VENV) $(MITM_VENV) $(BENCH_VENV) .mypy_cache .ruff_cache .pytest_cache
