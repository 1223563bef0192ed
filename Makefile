# kiemke — make inventory (runs the bundled sample) and make test.
# Both create .venv and install the package the first time.

PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
CONFIG ?= inventory.toml
STAMP  := $(VENV)/.installed-stamp

.PHONY: inventory test sample bench lint clean-outputs help

help:
	@echo "make inventory   set up .venv, run the whole inventory on $(CONFIG)"
	@echo "make test        set up .venv, run the test suite"
	@echo "make sample      regenerate the bundled sample in data/raw/sample"
	@echo "make bench       time the stages on synthetic data (benchmarks/results.json)"
	@echo "make lint        ruff: undefined and unused names"

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

inventory: $(STAMP)
	$(BIN)/kiemke inventory --config $(CONFIG)

test: $(STAMP)
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python -m pip install --quiet fiona psutil
	command -v ogr2ogr >/dev/null || (command -v apt-get >/dev/null && apt-get install -y -qq gdal-bin >/dev/null) || true
	$(BIN)/python -m benchmarks.run

lint: $(STAMP)
	$(BIN)/python -m pip install --quiet ruff
	$(BIN)/ruff check pipeline tests benchmarks --select F,E9

sample: $(STAMP)
	$(BIN)/kiemke sample --out data/raw/sample

clean-outputs:
	rm -rf data/processed/*
	touch data/processed/.gitkeep
