# `make run` and `make test` set everything up themselves on a fresh Debian machine:
# a .venv filled from PyPI (uv for speed, pip as the fallback) and the Debian packages
# the suite drives for real (graphviz's `dot`, Chromium for Playwright).

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
VPY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
UV_VERSION := 0.13.9
PYTEST_ARGS ?=

NBFLOW_HOME ?= $(CURDIR)/.nbflow
export NBFLOW_HOME

# Root runs apt-get directly; anyone else goes through sudo when there is one.
SUDO := $(shell [ "$$(id -u)" = 0 ] || { command -v sudo >/dev/null 2>&1 && echo sudo; })
APT_GET := $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get

.PHONY: help venv sysdeps test run bench clean

help:
	@echo "make run    set up, then run the scheduler on the example DAGs in dags/ (SQLite, local executor; Ctrl-C stops)"
	@echo "make test   set up, then run the whole test suite (PYTEST_ARGS=... to pass options)"
	@echo "make venv | sysdeps | bench | clean"

venv: $(STAMP)

# The stamp depends on pyproject.toml, so a repeat run installs nothing unless the pins changed.
$(STAMP): pyproject.toml
	@if [ ! -x $(VPY) ]; then \
	  rm -rf $(VENV); \
	  if ! $(PYTHON) -m venv $(VENV); then \
	    echo "python3 -m venv failed; installing Debian's python3-venv" >&2; \
	    rm -rf $(VENV); \
	    $(APT_GET) update -qq && $(APT_GET) install -y -qq --no-install-recommends python3-venv; \
	    $(PYTHON) -m venv $(VENV); \
	  fi; \
	fi
	$(VPY) -m pip install -q --disable-pip-version-check uv==$(UV_VERSION)
	@if ! $(VENV)/bin/uv pip install --python $(VPY) --compile-bytecode -C editable_mode=compat -e '.[all]'; then \
	  echo "uv failed; falling back to pip" >&2; \
	  $(VPY) -m pip install --disable-pip-version-check --config-settings editable_mode=compat -e '.[all]'; \
	fi
	@touch $@

# Installs only what is missing; one `apt-get update` for all of it.
sysdeps:
	@missing=""; \
	command -v dot >/dev/null 2>&1 || missing="$$missing graphviz"; \
	[ -x /usr/bin/chromium ] || missing="$$missing chromium"; \
	if [ -n "$$missing" ]; then \
	  if [ "$$(id -u)" != 0 ] && [ -z "$(SUDO)" ]; then \
	    echo "warning: not root and no sudo; cannot install:$$missing (tests that need them will skip)" >&2; \
	  else \
	    echo "installing Debian packages:$$missing"; \
	    $(APT_GET) update -qq; \
	    $(APT_GET) install -y -qq --no-install-recommends $$missing; \
	  fi; \
	fi

test: venv sysdeps
	$(VPY) -m pytest -q -x --timeout=300 -n 2 $(PYTEST_ARGS) tests

# The scheduler with the local executor on SQLite, running the example DAGs on their schedules
# (each runs its latest interval at once) until Ctrl-C; `make run RUN_ARGS=--until-idle` stops
# once every run has finished.
RUN_ARGS ?=
run: venv sysdeps
	$(VENV)/bin/nbflow standalone $(RUN_ARGS)

bench: venv
	$(VPY) -m benchmarks all

clean:
	rm -rf $(VENV) .nbflow build dist *.egg-info .pytest_cache .benchmarks
	find . -path ./.git -prune -o -name __pycache__ -type d -prune -exec rm -rf {} +
