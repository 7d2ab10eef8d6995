# apflow_nb: `make demo` and `make test` work on a fresh machine with Python 3 and the package registries.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed
EXTRAS := test,browser,dask

.PHONY: venv demo test test-fast bench lab sysdeps clean

# Installs once; again only when pyproject.toml changes (or after `make clean`).
# Prefers uv (installed with pip when missing); falls back to `python3 -m venv` + pip.
# Bytecode is compiled at install time: PYTHONDONTWRITEBYTECODE may be set, and imports are slow without it.
$(STAMP): pyproject.toml
	@set -e; \
	uv=""; \
	if command -v uv >/dev/null 2>&1; then uv=uv; \
	elif $(PYTHON) -m uv --version >/dev/null 2>&1; then uv="$(PYTHON) -m uv"; \
	else \
	  echo "uv not found: installing it with $(PYTHON) -m pip"; \
	  if $(PYTHON) -m pip install -q uv; then \
	    command -v pyenv >/dev/null 2>&1 && pyenv rehash || true; \
	    if command -v uv >/dev/null 2>&1; then uv=uv; \
	    elif $(PYTHON) -m uv --version >/dev/null 2>&1; then uv="$(PYTHON) -m uv"; fi; \
	  fi; \
	fi; \
	if [ -n "$$uv" ]; then \
	  test -x $(PY) || $$uv venv -q --python $(PYTHON) $(VENV); \
	  $$uv pip install -q --python $(PY) --compile-bytecode -e '.[$(EXTRAS)]'; \
	else \
	  echo "uv unavailable: falling back to $(PYTHON) -m venv and pip"; \
	  test -x $(PY) || $(PYTHON) -m venv $(VENV); \
	  $(PY) -m pip install -q --upgrade pip; \
	  $(PY) -m pip install -q -e '.[$(EXTRAS)]'; \
	  $(PY) -m compileall -q -j 0 $(VENV)/lib >/dev/null || true; \
	fi; \
	touch $(STAMP)

venv: $(STAMP)

# Debian packages the full suite uses: Chromium (browser test) and PostgreSQL (shared-store tests).
sysdeps:
	-@bash .ci/sysdeps.sh

demo: venv
	$(PY) -m apflow_nb.demo

# unit, store, notebook (nbclient) and browser tests, and every tutorial once more through nbmake.
# pytest's own exit status is the target's: 5 (no tests collected) fails `make test` too.
test: venv sysdeps
	$(PY) -m pytest -q $(PYTEST_ARGS) --nbmake --nbmake-timeout=300 tests notebooks

test-fast: venv
	$(PY) -m pytest -q -m "not browser and not notebooks and not packaging" $(PYTEST_ARGS)

bench: venv
	$(PY) bench/core.py

lab: venv
	$(VENV)/bin/jupyter lab notebooks/

clean:
	rm -rf $(VENV) .pytest_cache .hypothesis .apflow build *.egg-info
