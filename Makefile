# One obvious entry per task. Every target creates .venv on first use.
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: install test check lint typecheck unit lowest urllib3-1.26 aiohttp-oldest demo bench clean

UV := $(VENV)/bin/uv

# The main venv holds the newest versions the bounds allow (uv's "highest" resolution, written to
# a constraints file), so the suite proves the upper ends of the ranges on every run.
# (an editable install compiles the optional C extension into the source tree: hatch_build.py)
SPEEDUPS := hatch_build.py llmcassette/_speedups.c

$(STAMP): pyproject.toml $(SPEEDUPS)
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip 'uv==0.13.9'
	$(UV) pip compile pyproject.toml --extra test --resolution highest --python $(PY) \
		--quiet --no-header --output-file $(VENV)/highest.txt
	$(UV) pip install --python $(PY) --quiet --constraint $(VENV)/highest.txt -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

## The README's test command: lint, types, the whole suite on the newest versions the dependency
## bounds allow, then the suite again on the lowest, then the urllib3 tests on urllib3 1.26 and
## the aiohttp tests on the oldest aiohttp the door supports.
test: check unit lowest urllib3-1.26 aiohttp-oldest

check: lint typecheck

lint: $(STAMP)
	$(PY) -m ruff check .
	$(PY) -m ruff format --check .

typecheck: $(STAMP)
	$(PY) -m mypy

# The main run requires the C extension (tests/test_compiled.py fails without it); the lowest
# versions' run turns it off, so the suite proves the Python code it stands in for as well.
unit: $(STAMP)
	LLMCASSETTE_REQUIRE_SPEEDUPS=1 $(PY) -m pytest -n 2 -q

# The lowest versions the bounds allow for each direct dependency (uv's "lowest-direct"), in a venv
# of its own, with the `test-core` extra: google-genai and litellm need newer pydantic, httpx and
# PyYAML than our floors, so the tests that drive them are left out of this run.
LOWEST_VENV ?= .venv-lowest
LOWEST_PY := $(LOWEST_VENV)/bin/python
LOWEST_STAMP := $(LOWEST_VENV)/.installed-stamp
LOWEST_SKIP := tests/sdk_faults tests/test_sdks.py tests/test_corpus.py tests/providers/test_sdks.py \
	tests/cli/test_record.py tests/cli/test_serve.py tests/cli/test_node_clients.py tests/test_sdk_recordings.py \
	tests/adapters/test_websockets_sdks.py tests/ws/test_live_upstream.py tests/cli/test_node_realtime.py \
	tests/cli/test_tls.py

$(LOWEST_STAMP): pyproject.toml $(SPEEDUPS) $(STAMP)
	rm -rf $(LOWEST_VENV)
	python3 -m venv $(LOWEST_VENV)
	$(UV) pip compile pyproject.toml --extra test-core --resolution lowest-direct --python $(LOWEST_PY) \
		--quiet --no-header --output-file $(LOWEST_VENV)/lowest.txt
	$(UV) pip install --python $(LOWEST_PY) --quiet --constraint $(LOWEST_VENV)/lowest.txt -e '.[test-core]'
	touch $(LOWEST_STAMP)

lowest: $(LOWEST_STAMP)
	LLMCASSETTE_PURE_PYTHON=1 $(LOWEST_PY) -m pytest -n 2 -q -p no:cacheprovider $(addprefix --ignore=,$(LOWEST_SKIP))

# The http.client door on urllib3 1.26, which requests and botocore still accept: the tests that
# drive urllib3 (directly, through requests and through botocore), in a venv of their own with the
# main venv's versions but urllib3 1.26.x. uv installs it from its cache, and the venv is kept
# until pyproject.toml changes.
URLLIB3_VENV ?= .venv-urllib3
URLLIB3_PY := $(URLLIB3_VENV)/bin/python
URLLIB3_STAMP := $(URLLIB3_VENV)/.installed-stamp
URLLIB3_TESTS := tests/adapters tests/test_intercept.py tests/test_playback.py
# (the websockets door's SDK tests drive google-genai, which this venv, like the lowest, leaves out)
URLLIB3_SKIP := tests/adapters/test_websockets_sdks.py

$(URLLIB3_STAMP): pyproject.toml $(STAMP)
	rm -rf $(URLLIB3_VENV)
	python3 -m venv $(URLLIB3_VENV)
	grep -v '^urllib3==' $(VENV)/highest.txt > $(URLLIB3_VENV)/constraints.txt
	echo 'urllib3>=1.26,<1.27' >> $(URLLIB3_VENV)/constraints.txt
	$(UV) pip install --python $(URLLIB3_PY) --quiet --constraint $(URLLIB3_VENV)/constraints.txt \
		-e '.[test-core]'
	touch $(URLLIB3_STAMP)

urllib3-1.26: $(URLLIB3_STAMP)
	$(URLLIB3_PY) -c "import sys, urllib3; sys.exit(None if urllib3.__version__.startswith('1.26.') else f'urllib3 {urllib3.__version__} is not 1.26')"
	$(URLLIB3_PY) -m pytest -n 2 -q -p no:cacheprovider $(URLLIB3_TESTS) $(addprefix --ignore=,$(URLLIB3_SKIP))

# The aiohttp door on the oldest aiohttp it supports (the suite pins the newest): the tests that
# drive aiohttp, in a venv of their own with the main venv's versions but aiohttp overridden to
# AIOHTTP_OLDEST, and the packages only aiohttp brings left for uv to resolve against it (3.8
# takes multidict 6). 3.8.4 is the oldest 3.x with wheels for Python 3.11 that installs beside
# requests' charset-normalizer 3 (aiohttp is never built here: on a newer Python, whose oldest
# wheels are later, set AIOHTTP_OLDEST). litellm and google-genai need newer aiohttp: their tests
# are not run here.
AIOHTTP_OLDEST ?= 3.8.4
AIOHTTP_VENV ?= .venv-aiohttp
AIOHTTP_PY := $(AIOHTTP_VENV)/bin/python
AIOHTTP_STAMP := $(AIOHTTP_VENV)/.installed-stamp-$(AIOHTTP_OLDEST)
AIOHTTP_TESTS := tests/adapters/test_aiohttp.py tests/adapters/test_reading_styles.py \
	tests/adapters/test_fault_table.py tests/adapters/test_clients.py tests/plugin/test_vcr_switch.py
AIOHTTP_ONLY := aiohttp|aiohappyeyeballs|aiosignal|async-timeout|frozenlist|multidict|propcache|yarl

$(AIOHTTP_STAMP): pyproject.toml $(STAMP)
	rm -rf $(AIOHTTP_VENV)
	python3 -m venv $(AIOHTTP_VENV)
	grep -v -E '^($(AIOHTTP_ONLY))==' $(VENV)/highest.txt > $(AIOHTTP_VENV)/constraints.txt
	echo 'aiohttp==$(AIOHTTP_OLDEST)' > $(AIOHTTP_VENV)/overrides.txt
	$(UV) pip install --python $(AIOHTTP_PY) --quiet --constraint $(AIOHTTP_VENV)/constraints.txt \
		--override $(AIOHTTP_VENV)/overrides.txt --only-binary aiohttp -e '.[test-core]'
	touch $(AIOHTTP_STAMP)

aiohttp-oldest: $(AIOHTTP_STAMP)
	$(AIOHTTP_PY) -c "import sys, aiohttp; sys.exit(None if aiohttp.__version__ == '$(AIOHTTP_OLDEST)' else f'aiohttp {aiohttp.__version__} is not $(AIOHTTP_OLDEST)')"
	$(AIOHTTP_PY) -m pytest -n 2 -q -p no:cacheprovider $(AIOHTTP_TESTS) -k aiohttp

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
	$(PY) bench/startup.py
	$(PY) bench/websocket.py
	$(BENCH_VENV)/bin/python bench/suite_path.py

clean:
	rm -rf $(VENV) $(LOWEST_VENV) $(URLLIB3_VENV) $(AIOHTTP_VENV) $(MITM_VENV) $(BENCH_VENV) .mypy_cache .ruff_cache .pytest_cache
