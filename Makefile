# The two commands of the README: `make run` and `make test`. Both set everything up first.
VENV ?= .venv
PYTHON ?= python3
STAMP := $(VENV)/.installed-stamp

.PHONY: install run test lint bench chromium

$(STAMP): pyproject.toml client_sdk/pyproject.toml
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "Losslens needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install -q --upgrade pip
	$(VENV)/bin/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

# The server on SQLite (~/.losslens/losslens.db) at http://127.0.0.1:8765, a demo run streaming in.
run: install
	$(VENV)/bin/losslens serve --demo

# Browser tests drive Debian's chromium; install it when it is missing (needs root/sudo).
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

test: install chromium
	$(VENV)/bin/ruff check .
	$(VENV)/bin/pytest

bench: install
	$(VENV)/bin/python bench/run_all.py
