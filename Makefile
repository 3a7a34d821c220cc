# The two commands of the README's quick start. Both set up the virtual environment first.
PY ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: setup test train

$(BIN)/activate:
	$(PY) -m venv $(VENV)

# pip resolves torch>=2.4,<2.14 (pyproject): on this machine that is the local 2.13.0+cpu wheel.
setup: $(BIN)/activate
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e ".[dev]"

# pytest exits 5 when it collects no test: that must not count as green.
test: setup
	@$(BIN)/python -m pytest -q; rc=$$?; \
	if [ $$rc -eq 5 ]; then echo "pytest collected no tests: failing"; exit 1; fi; exit $$rc

train: setup
	$(BIN)/textgym train
