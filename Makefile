# kiemke — make inventory (runs the bundled sample) and make test.
# Both create .venv and install the package the first time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= inventory.toml
STAMP  := $(VENV)/.installed-stamp
SYSTEM_STAMP := $(VENV)/.system-packages-stamp

OLDEST := .venv-oldest

.PHONY: inventory inventory-2024 notebook test test-fast test-oldest system-packages sample bench lint clean-outputs help

help:
	@echo "make inventory   set up .venv, run the whole inventory on $(CONFIG)"
	@echo "make inventory-2024  the sample as the 2024 inventory (Circular 08/2024) → data/processed_2024"
	@echo "make notebook    run the inventory, then re-render notebooks/inventory_2019.ipynb with its outputs"
	@echo "make test        set up .venv (and the system packages the output tests use), run every test"
	@echo "make test-fast   the unit tests only (inline geometry, no full inventory): two to three minutes"
	@echo "make test-oldest the unit tests and the golden sample run on the oldest versions pyproject.toml allows"
	@echo "make lint        ruff (pyflakes, pycodestyle, isort, bugbear, pyupgrade, simplify) and mypy"
	@echo "make sample      regenerate the bundled sample in data/raw/sample"
	@echo "make bench       time the stages on synthetic data (benchmarks/results.json)"

$(STAMP): pyproject.toml
	scripts/make-venv.sh $(VENV) "$(PYTHON)"
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,dev]'
	touch $(STAMP)

# LibreOffice, QGIS's Python API and poppler, for the tests that look at the outputs
$(SYSTEM_STAMP): scripts/install-system-packages.sh | $(STAMP)
	scripts/install-system-packages.sh
	touch $(SYSTEM_STAMP)

system-packages: $(SYSTEM_STAMP)

inventory: $(STAMP)
	$(BIN)/kiemke inventory --config $(CONFIG)

# the 2024 inventory compares with the 2019 one regrouped onto the communes of 2025: run that first
inventory-2024: inventory
	$(BIN)/kiemke inventory --config inventory_2024.toml

notebook: inventory
	$(BIN)/python scripts/render_notebook.py

test: $(STAMP) $(SYSTEM_STAMP)
	$(BIN)/python -m pytest -q

test-fast: $(STAMP)
	$(BIN)/python -m pytest -q -m "not slow"

# the lower bounds of pyproject.toml are true: with each dependency at its bound, the sample's
# outputs equal the golden ones, and the unit tests of OLDEST_TESTS pass (CI: those of reading
# files, messages and forms, for time)
OLDEST_TESTS ?= tests
test-oldest: $(STAMP)
	scripts/oldest-venv.sh $(OLDEST) "$(PYTHON)" $(BIN)/uv
	$(OLDEST)/bin/python -m pytest -q tests/test_golden.py
	$(OLDEST)/bin/python -m pytest -q -m "not slow" $(OLDEST_TESTS)

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet fiona psutil
	command -v ogr2ogr >/dev/null || (command -v apt-get >/dev/null && apt-get install -y -qq gdal-bin >/dev/null) || true
	$(BIN)/python -m benchmarks.run

lint: $(STAMP)
	$(BIN)/ruff check pipeline tests benchmarks
	$(BIN)/mypy

sample: $(STAMP)
	$(BIN)/kiemke sample --out data/raw/sample

clean-outputs:
	rm -rf data/processed/*
	touch data/processed/.gitkeep
