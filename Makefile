# Each target bootstraps its own .venv on a fresh clone.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# dbt (the `dbt` extra) lives in its own environment: its pins clash with the linters' (pyproject)
DBT_VENV := .venv-dbt
DBT_STAMP := $(DBT_VENV)/.installed

.PHONY: demo dbt-demo test lint bench bench-quick sandbox clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[test]'
	touch $(STAMP)

$(DBT_STAMP): pyproject.toml
	test -x $(DBT_VENV)/bin/python || $(PYTHON) -m venv $(DBT_VENV)
	$(DBT_VENV)/bin/python -m pip install --quiet --upgrade pip
	$(DBT_VENV)/bin/python -m pip install --quiet -e '.[dbt]'
	touch $(DBT_STAMP)

demo: $(STAMP)
	$(PY) pipelines/demo.py

# after `make demo`: dbt builds the package over skyprep.duckdb; every table must equal the runner's
dbt-demo: $(STAMP) $(DBT_STAMP)
	$(PY) pipelines/dbt_demo.py --dbt $(CURDIR)/$(DBT_VENV)/bin/dbt

test: $(STAMP) $(DBT_STAMP)
	SKYPREP_DBT=$(CURDIR)/$(DBT_VENV)/bin/dbt $(PY) -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

bench: $(STAMP)
	$(PY) bench/run.py

bench-quick: $(STAMP)
	$(PY) bench/run.py --quick

sandbox: $(STAMP)
	$(VENV)/bin/skyprep-sandbox --scale demo --port 8765

clean:
	rm -rf $(VENV) $(DBT_VENV) *.duckdb _work bench/_work
