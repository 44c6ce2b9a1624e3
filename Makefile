# mgm_analysis — set-up, demo, tests, benchmarks.
#   make demo    set up (first time) and run the whole pipeline on the built-in model
#   make test    set up (first time) and run the test suite (tests/test_architecture.py holds the layers contract)
#   make examples  execute the notebooks in examples/ in a Jupyter kernel with small settings, and docs/api.md's
#                  examples as doctests (CI runs it)
#   make wheel-smoke  build the sdist and wheel, check them, install the wheel into a clean venv and run every command
#   make mutation  mutation testing (mutmut) of metrics, masks, losses and compare, each against its own
#                  tests; kill rates in a table, survivors in build/mutation/<module>/survivors.txt (not in CI)
# The virtual environment lives in .venv; `make install` is re-run when pyproject.toml changes.

PYTHON  ?= python3
VENV    ?= .venv
PY      := $(VENV)/bin/python
# torch + torchvision pair that imports together on CPU (LPIPS needs torchvision).
# Override for your platform, e.g. `make install TORCH="torch torchvision"`.
TORCH   ?= torch==2.14.1 torchvision==0.29.1
STAMP   := $(VENV)/.installed-stamp
PYTEST_ARGS ?=
# test processes (pytest-xdist): CI has 2 cores; the long tests are handed out first (tests/conftest.py), two
# at a time (--maxschedchunk 2: xdist's first hand-out of a quarter of the suite per process gave one process
# every long test, and it ran a minute past the other)
TEST_JOBS ?= 2

.PHONY: install demo test test-fast examples lint bench mutation wheel-smoke clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q $(TORCH)
	$(PY) -m pip install -q -e '.[lpips,test]'
	touch $(STAMP)

demo: $(STAMP)
	$(VENV)/bin/mgm demo

test: $(STAMP)
	$(PY) -m pytest -q --headless -n $(TEST_JOBS) --dist load --maxschedchunk 2 -m "not examples" $(PYTEST_ARGS)

examples: $(STAMP)
	$(PY) -m pytest -q -s -m examples tests/test_examples.py tests/test_docs_api.py $(PYTEST_ARGS)

test-fast: $(STAMP)
	$(PY) -m pytest -q -m "not slow and not browser and not examples" -n $(TEST_JOBS) --dist load --maxschedchunk 2 $(PYTEST_ARGS)

lint: $(STAMP)
	$(VENV)/bin/ruff check mgm_analysis dashboards tests benchmarks tools examples
	$(VENV)/bin/lint-imports --no-cache

bench: $(STAMP)
	# benchmarks/bench_load.py drives simulated people with locust (< 2.30: later ones need urllib3 2, which
	# dash[testing]'s selenium does not take)
	$(PY) -m pip install -q 'locust>=2.20,<2.30'
	$(PY) benchmarks/run_all.py

wheel-smoke:
	TORCH="$(TORCH)" PYTHON="$(PYTHON)" bash tools/wheel_smoke.sh

# MUTATION_ARGS: modules and options of tools/mutation.py, e.g. `make mutation MUTATION_ARGS="masks -j 1"`
MUTATION_ARGS ?=
mutation: $(STAMP)
	$(PY) -c "import mutmut" 2>/dev/null || $(PY) -m pip install -q "mutmut>=3.3"
	nice -n 10 $(PY) tools/mutation.py $(MUTATION_ARGS)

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .ruff_cache bench_results artifacts
