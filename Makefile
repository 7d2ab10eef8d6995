# apflow_nb: `make demo` and `make test` work on a fresh machine with Python 3 and the package registries.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed

.PHONY: venv demo test test-fast bench lab sysdeps clean

$(STAMP): pyproject.toml
	@command -v uv >/dev/null 2>&1 || $(PYTHON) -m pip install -q uv
	@test -x $(PY) || uv venv -q --python $(PYTHON) $(VENV)
	uv pip install -q --python $(PY) --compile-bytecode -e '.[test,browser,dask]'
	@touch $(STAMP)

venv: $(STAMP)

# Debian packages the full suite uses: Chromium (browser test) and PostgreSQL (shared-store tests).
sysdeps:
	-@bash .ci/sysdeps.sh

demo: venv
	$(PY) -m apflow_nb.demo

# unit, store, notebook (nbclient) and browser tests, and every tutorial once more through nbmake
test: venv sysdeps
	$(PY) -m pytest $(PYTEST_ARGS) --nbmake --nbmake-timeout=300 tests notebooks

test-fast: venv
	$(PY) -m pytest -m "not browser and not notebooks" $(PYTEST_ARGS)

bench: venv
	$(PY) bench/core.py

lab: venv
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .apflow
