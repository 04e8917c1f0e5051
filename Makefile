# The README's two commands: `make demo` and `make test`. Each does the whole set-up.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup demo test test-fast lint fuse3 tools bench clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; assert sys.version_info >= (3, 11), "procorefs needs Python 3.11+"'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

setup: $(STAMP) fuse3

fuse3:
	@bash scripts/ensure-fuse3

# The real programs the mount tier drives (headless LibreOffice, rsync).
tools:
	@bash scripts/ensure-libreoffice

demo: setup
	$(BIN)/procorefs demo

lint: $(STAMP)
	$(BIN)/ruff check procorefs tests bench
	$(BIN)/mypy procorefs
	$(BIN)/mypy --platform win32 procorefs
	$(BIN)/lint-imports

test: setup tools lint
	$(BIN)/python -m pytest

# The lower tiers only: no kernel mount, no large transfers.
test-fast: $(STAMP)
	$(BIN)/python -m pytest tests/unit tests/emulator tests/api tests/core -m 'not slow'

bench: setup
	$(BIN)/python -m bench $(BENCH_ARGS)

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache build *.egg-info
