# Quick start: `make demo` (the main job, offline) and `make test` (the test suite).
# Both create the virtual environment .venv themselves (pip + venv; torch comes from PyPI or a local mirror).
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo test check bench clean help

help:
	@echo "make demo   - train specs/mnist5k.cnn on the CPU, offline (creates .venv)"
	@echo "make test   - run the test suite (creates .venv with the dev extras)"
	@echo "make check  - cnndsl check every spec in specs/"
	@echo "make bench  - run the compiler benchmarks in bench/"

$(VENV)/.base: pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -m pip install -q -e '.[data]'
	@touch $@

$(VENV)/.dev: pyproject.toml $(VENV)/.base
	$(BIN)/python -m pip install -q -e '.[dev]'
	@touch $@

demo: $(VENV)/.base
	$(BIN)/cnndsl train specs/mnist5k.cnn --device cpu

# two workers with one torch thread each: the suite uses 2 cores without oversubscribing them
test: $(VENV)/.dev
	OMP_NUM_THREADS=1 $(BIN)/python -m pytest -q -n 2 $(PYTEST_ARGS)

check: $(VENV)/.base
	@for f in specs/*.cnn specs/*.yaml; do $(BIN)/cnndsl check -q $$f || exit 1; done

bench: $(VENV)/.dev
	$(BIN)/python bench/check_time.py
	$(BIN)/python bench/build_time.py
	$(BIN)/python bench/parse_scale.py
	$(BIN)/python bench/forward_backward.py --quick

clean:
	rm -rf $(VENV) runs .pytest_cache .hypothesis
