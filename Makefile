# Muestra developer entry points. `make run` and `make test` are all a fresh machine needs (Python 3.11+, make).
#
#   make run     create .venv, install, migrate, load reference + demo data, serve web app + task worker
#   make test    create .venv, install, run the whole pytest suite
#   make lint    ruff check + mypy
#   make format  ruff check --fix + ruff format
#   make lock    regenerate requirements.lock from pyproject.toml (after changing dependencies)
#
# Variables: PORT (default 8000), PYTHON (interpreter that creates .venv, default python3),
# PYTEST_ARGS (extra pytest arguments, e.g. PYTEST_ARGS="-n auto -x").

PYTHON ?= python3
VENV ?= .venv
PORT ?= 8000
PYTEST_ARGS ?=
LOCK := requirements.lock

PY := $(VENV)/bin/python
# The install stamp is keyed on the lock file and pyproject.toml: a second `make` reinstalls nothing
# unless one of them changed.
INSTALL_HASH := $(shell cat $(LOCK) pyproject.toml 2>/dev/null | sha256sum | cut -c1-16)
STAMP := $(VENV)/.muestra-installed-$(INSTALL_HASH)
# Data directory of the embedded SQLite database and collected static files (settings: MUESTRA_VAR_DIR).
VAR_DIR := $(or $(MUESTRA_VAR_DIR),var)
CHROMIUM := $(or $(MUESTRA_CHROMIUM),/usr/bin/chromium)

export PORT

.DEFAULT_GOAL := help
.NOTPARALLEL:
.PHONY: help install run db demo static test lint format lock

help:
	@sed -n 's/^#   //p' $(firstword $(MAKEFILE_LIST))

# --- Installation ---------------------------------------------------------------------------------------

install: $(STAMP)

$(STAMP):
	@if [ ! -x "$(PY)" ]; then \
		$(PYTHON) -c 'import sys; sys.exit(sys.version_info < (3, 11))' || \
			{ echo "Muestra needs Python 3.11 or newer (found: $$($(PYTHON) --version 2>&1))." >&2; exit 1; }; \
		echo "Creating $(VENV) with $$($(PYTHON) --version)"; \
		$(PYTHON) -m venv $(VENV) || \
			{ echo "python3 -m venv failed: on Debian/Ubuntu install the python3-venv package." >&2; exit 1; }; \
	fi
	@echo "Installing the pinned dependencies from $(LOCK) into $(VENV) (a minute the first time)..."
	$(PY) -m pip install -qq --disable-pip-version-check -r $(LOCK)
	$(PY) -m pip install -qq --disable-pip-version-check --no-deps -e .
	@rm -f $(VENV)/.muestra-installed-*
	@touch $@

# --- Running --------------------------------------------------------------------------------------------

db: install
	@mkdir -p $(VAR_DIR)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py load_reference

demo: db
	$(PY) manage.py seed_demo

static: install
	$(PY) manage.py collectstatic --noinput --verbosity 0

run: demo static
	@bash scripts/run_dev.sh

# --- Checks ---------------------------------------------------------------------------------------------

# Browser tests need Chromium; without it they are skipped rather than failed (`.ci/run` installs it).
test: install
	@if [ -z "$$MUESTRA_SKIP_BROWSER" ] && [ ! -x "$(CHROMIUM)" ]; then \
		echo "note: no Chromium at $(CHROMIUM): browser tests skipped (apt-get install chromium to run them)"; \
		export MUESTRA_SKIP_BROWSER=1; \
	fi; \
	set -x; \
	MUESTRA_FAST_PASSWORD_HASHER=1 MUESTRA_CHROMIUM=$(CHROMIUM) $(PY) -m pytest $(PYTEST_ARGS)

# Both linters always run, so one call reports everything.
lint: install
	@status=0; \
	echo "$(VENV)/bin/ruff check ."; $(VENV)/bin/ruff check . || status=1; \
	echo "$(VENV)/bin/mypy ."; $(VENV)/bin/mypy . || status=1; \
	exit $$status

format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

lock:
	PYTHON=$(PYTHON) bash scripts/update_lock.sh
