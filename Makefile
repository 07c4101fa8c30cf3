# rldyn: `make run` and `make test` work on a fresh machine with nothing but Python.
PYTHON ?= python3
VENV ?= .venv
# A bare `torch` from the registry is a multi-GB CUDA build; override e.g. TORCH_SPEC="torch==2.14.1".
TORCH_SPEC ?= torch==2.13.0
BIN := $(VENV)/bin
SRC := rl envs dynamics scripts tests benchmarks docs
STAMP := $(VENV)/.installed

.PHONY: install run test test-slow lint type format clean demo-env docs

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet -e ".[test]"
	touch $(STAMP)

install: $(STAMP)

run: install
	$(BIN)/python scripts/train_qarl.py env=Hopper budget=demo

demo-env: install
	$(BIN)/python scripts/play_adversarial.py env=Hopper

lint: install
	$(BIN)/ruff check $(SRC)
	$(BIN)/ruff format --check $(SRC)

type: install
	$(BIN)/mypy

format: install
	$(BIN)/ruff check --select I --fix $(SRC)
	$(BIN)/ruff format $(SRC)

test: lint type
	PYTHONHASHSEED=0 $(BIN)/python -m pytest -m "not slow" -q

test-slow: install
	PYTHONHASHSEED=0 $(BIN)/python -m pytest -m slow -q

# the documentation site: generated reference pages, then a strict build (a broken link or reference fails)
docs: install
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python docs/gen_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "site built in site/ (open site/index.html, or serve with: $(BIN)/mkdocs serve)"

clean:
	rm -rf site $(VENV) .mypy_cache .ruff_cache .pytest_cache
