# byoa-router: `make demo` and `make test` work on a fresh machine from a clean clone.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: install demo test lint typecheck pytest compile clean-compiled test-compiled bench \
        bench-sim bench-sweep bench-proxy clean

install: $(STAMP)

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev,sim,redis,proxy,dask]'
	touch $(STAMP)

demo: install
	$(VENV)/bin/byoa simulate simulations/scenarios/default.toml --out out/demo

lint: install
	$(VENV)/bin/ruff check router simulations tests benchmarks tools

typecheck: install
	$(VENV)/bin/mypy --strict router simulations

pytest: install
	$(VENV)/bin/pytest

test: lint typecheck pytest

# Optional (issue 13): the core compiled with mypyc, in place (needs a C compiler and
# the Python headers). `make install` stays pure Python; BYOA_PURE=1 or
# `make clean-compiled` gives the pure core back (see router/compiled.py).
compile: install
	$(PY) tools/compile_core.py

clean-compiled: install
	$(PY) tools/compile_core.py --clean

# The compiled core = the pure one (tests/test_compiled.py, never skipped here), and the
# outputs the README shows (worked examples, pacing sweep), byte for byte, from it.
test-compiled: compile
	BYOA_REQUIRE_COMPILED=1 $(VENV)/bin/pytest tests/test_compiled.py tests/test_readme.py \
	    tests/test_contract_example.py tests/test_rules_H.py tests/test_sim_pacing.py

bench: install
	$(PY) benchmarks/bench_router.py

bench-sim: install
	$(PY) benchmarks/bench_sim.py

bench-sweep: install
	$(PY) benchmarks/bench_sweep.py

bench-proxy: install
	$(PY) benchmarks/bench_proxy_cpu.py

clean:
	rm -rf $(VENV) .mypy_cache .pytest_cache .ruff_cache .hypothesis build
	rm -f router/*.so simulations/*.so
