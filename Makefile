# rldyn: `make run` and `make test` work on a fresh machine with nothing but Python.
PYTHON ?= python3
VENV ?= .venv
# A bare `torch` from the registry is a multi-GB CUDA build; override e.g. TORCH_SPEC="torch==2.14.1".
TORCH_SPEC ?= torch==2.13.0
# The tested versions of every dependency but torch, generated from pyproject.toml by `make lock`;
# `make install LOCK=` installs the newest versions pyproject allows instead.
LOCK ?= requirements/lock.txt
BIN := $(VENV)/bin
SRC := rl envs dynamics scripts tests benchmarks docs
STAMP := $(VENV)/.installed
CONSTRAIN := $(if $(LOCK),-c $(LOCK))
# Scratch venvs: `make lock` resolves pyproject.toml in a fresh one; `make test-min` installs the lower bounds.
LOCK_VENV ?= .venv-lock
MIN_VENV ?= .venv-min

.PHONY: install run test test-slow test-cluster test-min lock lint type format clean demo-env docs reproduce-quick

$(STAMP): pyproject.toml $(LOCK)
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(CONSTRAIN) "$(TORCH_SPEC)"
	$(BIN)/python -m pip install --quiet $(CONSTRAIN) -e ".[test]"
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
	PYTHONHASHSEED=0 $(BIN)/python -m pytest -m "not slow and not cluster" -q

test-slow: install
	PYTHONHASHSEED=0 $(BIN)/python -m pytest -m slow -q

# rerun every benchmark table that takes under 2 CPU-minutes and compare with its committed numbers
reproduce-quick: install
	PYTHONHASHSEED=0 $(BIN)/python benchmarks/reproduce.py --check --quick

# the documentation site: generated reference pages, then a strict build (a broken link or reference fails)
docs: install
	$(BIN)/python -m pip install --quiet -e ".[docs]"
	$(BIN)/python docs/gen_reference.py
	NO_MKDOCS_2_WARNING=1 $(BIN)/mkdocs build --strict --quiet
	@echo "site built in site/ (open site/index.html, or serve with: $(BIN)/mkdocs serve)"

# Jobs on a real scheduler: a private single-node SLURM (.ci/slurm.sh; root, Debian packages installed if missing)
# is started, the `cluster` tests run against it, and exactly the daemons it started are stopped again.
test-cluster: install
	@set -e; trap '.ci/slurm.sh down' EXIT; .ci/slurm.sh up; eval "$$(.ci/slurm.sh env)"; \
	PYTHONHASHSEED=0 $(BIN)/python -m pytest -m cluster -q


# Regenerate the lock: install pyproject.toml's ranges (and TORCH_SPEC) into a fresh venv, freeze it.
lock:
	rm -rf $(LOCK_VENV)
	$(PYTHON) -m venv $(LOCK_VENV)
	$(LOCK_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(LOCK_VENV)/bin/python -m pip install --quiet "$(TORCH_SPEC)"
	$(LOCK_VENV)/bin/python -m pip install --quiet -e ".[test]"
	$(LOCK_VENV)/bin/python scripts/deps.py lock --python $(LOCK_VENV)/bin/python --out requirements/lock.txt
	rm -rf $(LOCK_VENV)

# Every declared lower bound is true: install the floors (torch: TORCH_SPEC) in a fresh venv, lint, run the quick
# suite. mypy is not run: its verdict depends on the libraries' type hints, and `make type` is defined on the lock.
test-min:
	rm -rf $(MIN_VENV)
	$(PYTHON) -m venv $(MIN_VENV)
	$(MIN_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(MIN_VENV)/bin/python -m pip install --quiet packaging "tomli; python_version < '3.11'"
	$(MIN_VENV)/bin/python scripts/deps.py floors --out $(MIN_VENV)/floors.txt
	$(MIN_VENV)/bin/python -m pip install --quiet -c $(MIN_VENV)/floors.txt "$(TORCH_SPEC)"
	$(MIN_VENV)/bin/python -m pip install --quiet -c $(MIN_VENV)/floors.txt -e ".[test]"
	$(MIN_VENV)/bin/python -m pip freeze --exclude-editable > $(MIN_VENV)/installed.txt
	$(MIN_VENV)/bin/ruff check $(SRC)
	$(MIN_VENV)/bin/ruff format --check $(SRC)
	PYTHONHASHSEED=0 $(MIN_VENV)/bin/python -m pytest -m "not slow and not cluster" -q -p no:cacheprovider

clean:
	rm -rf site $(VENV) $(LOCK_VENV) $(MIN_VENV) .mypy_cache .ruff_cache .pytest_cache
