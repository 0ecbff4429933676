# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= $(shell command -v python3.11 2>/dev/null || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
SOURCES := $(shell find src -type f -name '*.py' -o -type f -name '*.toml' 2>/dev/null) pyproject.toml

.PHONY: demo test lint typecheck imports unit bench clean screenshots chromium

$(BIN)/python:
	$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "perpscope needs Python >= 3.11"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# A regular (non-editable) install, as a user gets it.
$(VENV)/.demo-installed: $(BIN)/python $(SOURCES) constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt .
	touch $@

# An editable install with the development tools.
$(VENV)/.dev-installed: $(BIN)/python pyproject.toml constraints.txt
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev,bench]'
	touch $@

demo: $(VENV)/.demo-installed
	$(BIN)/perpscope demo

lint: $(VENV)/.dev-installed
	$(BIN)/ruff check src tests bench tools

typecheck: $(VENV)/.dev-installed
	$(BIN)/mypy

imports: $(VENV)/.dev-installed
	$(BIN)/lint-imports

# The dashboard's browser tests (tests/web) drive Debian's chromium: installed with apt-get when
# missing (as root, else through sudo). Playwright's own browser download is not used.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
	  echo "installing Debian's chromium for the browser tests"; \
	  $$SUDO apt-get update -qq && \
	  $$SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium; \
	}

unit: $(VENV)/.dev-installed chromium
	$(BIN)/python -m pytest

test: lint typecheck imports unit

bench: $(VENV)/.dev-installed
	for b in bench/*.py; do echo "== $$b"; $(BIN)/python $$b || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

# Text captures of three commands on the demo store at 80 and 120 columns (linked from README).
SHOTS := docs/screenshots
SHOTS_STORE := .screenshots-store

screenshots: $(VENV)/.demo-installed
	rm -rf $(SHOTS_STORE)
	$(BIN)/perpscope demo --store $(SHOTS_STORE) --format json > /dev/null
	mkdir -p $(SHOTS)
	for w in 80 120; do \
	  for cmd in "funding table" "oi summary" "basis"; do \
	    out=$(SHOTS)/$$(echo $$cmd | tr ' ' '-')-$$w.txt; \
	    { echo "$$ perpscope $$cmd    # demo store, $$w columns"; \
	      COLUMNS=$$w $(BIN)/perpscope --store $(SHOTS_STORE) $$cmd; } \
	      | sed -e 's/[[:space:]]*$$//' > $$out || exit 1; \
	  done; \
	done
	rm -rf $(SHOTS_STORE)
