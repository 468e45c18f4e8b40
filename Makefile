# Two commands do everything on a fresh machine with only Python 3.11+:
#   make demo   set up .venv and right-size the example model on local endpoints
#   make test   set up .venv (+ lint tools), run the checks (lint and complexity, mypy --strict,
#               dead code), then the whole test suite
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed

.PHONY: demo test lint setup clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e ".[loadgen,local,dev]"
	touch $(STAMP)

setup: $(STAMP)

MODEL := examples/local/digits/model.joblib

# Trained from the digits data that ships with scikit-learn: nothing is downloaded.
$(MODEL): $(STAMP) examples/local/digits/train.py
	$(PY) examples/local/digits/train.py

# The model.tar.gz example (SageMaker's code/ layout with a requirements.txt), trained from the
# iris data that ships with scikit-learn: `rightsizer run examples/local/iris-input.json`.
IRIS := examples/local/iris/model.tar.gz
$(IRIS): $(STAMP) examples/local/iris/build.py $(wildcard examples/local/iris/code/*)
	$(PY) examples/local/iris/build.py

demo: $(STAMP) $(MODEL)
	$(VENV)/bin/rightsizer run examples/local/digits-input.json

# ruff: lint + the complexity gate (C901); mypy and vulture read their paths from pyproject.toml.
test: $(STAMP) $(MODEL)
	$(VENV)/bin/ruff check src tests functions loadgen_container benchmarks
	$(VENV)/bin/mypy
	$(VENV)/bin/vulture
	$(VENV)/bin/pytest -q

# The AWS side's linters: aws-sam-cli and checkov pin dependencies that conflict with the
# project's, so each gets its own virtual environment (tests/aws/test_template.py uses them).
SAM_STAMP := .venv-sam/.installed
CHECKOV_STAMP := .venv-checkov/.installed

$(SAM_STAMP):
	$(PYTHON) -m venv .venv-sam
	.venv-sam/bin/python -m pip install -q --upgrade pip
	.venv-sam/bin/python -m pip install -q "aws-sam-cli>=1.120"
	touch $@

$(CHECKOV_STAMP):
	$(PYTHON) -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install -q --upgrade pip
	.venv-checkov/bin/python -m pip install -q "checkov>=3.2"
	touch $@

test: $(SAM_STAMP) $(CHECKOV_STAMP)

.PHONY: clean-aws
clean: clean-aws
clean-aws:
	rm -rf .venv-sam .venv-checkov .aws-sam

clean:
	rm -rf $(VENV) results .pytest_cache
