# Two entry points: `make demo` runs the whole job on the embedded defaults, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
MAILCHECK_NODE := mailcheck/node_modules/.installed

.PHONY: demo test bench bench-small check mailcheck clean

# pyproject.toml gives ranges; constraints.txt the exact versions every install here uses.
$(STAMP): pyproject.toml constraints.txt
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,mailcheck]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/dunning demo

test: $(STAMP) $(MAILCHECK_NODE)
	$(BIN)/pytest

bench: $(STAMP)
	$(BIN)/python -m bench

bench-small: $(STAMP)
	$(BIN)/python -m bench --small

# Every preview email through SpamAssassin and rspamd (local, content rules only), its links as mail clients
# find them (node: mailparser, linkify-it, pinned in mailcheck/package-lock.json) and Chromium at phone width;
# needs Debian's spamassassin, spamd, spamc, rspamd and chromium (see .ci/run), and node with npm.
mailcheck: $(STAMP) $(MAILCHECK_NODE)
	$(BIN)/python -m mailcheck

$(MAILCHECK_NODE): mailcheck/package.json mailcheck/package-lock.json
	cd mailcheck && npm ci --no-audit --no-fund --silent
	touch $(MAILCHECK_NODE)

# Everything make, the demo, the tests and the build leave behind; var/ holds only what dunning wrote.
clean:
	rm -rf $(VENV) mailcheck/node_modules build dist dunning.egg-info .pytest_cache .hypothesis .mypy_cache .ruff_cache .import_linter_cache bench/results
	find var -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

CHECK_STAMP := $(VENV)/.check-installed

$(CHECK_STAMP): $(STAMP) pyproject.toml constraints.txt
	$(BIN)/pip install --quiet -c constraints.txt -e '.[test,check]'
	touch $(CHECK_STAMP)

# Lint (ruff), types (mypy) and the import layers (import-linter); each must report nothing.
check: $(CHECK_STAMP)
	$(BIN)/ruff check .
	$(BIN)/mypy
	$(BIN)/lint-imports
