# The few commands people type. Each sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint bench build deploy sam clean

$(BIN)/backdrop: pyproject.toml layers/backdrop/requirements.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $@

# aws-sam-cli lives in its own environment: it pins boto3, click and pydantic versions the app must not inherit.
$(SAM_VENV)/bin/sam:
	test -x $(SAM_VENV)/bin/python || $(PYTHON) -m venv $(SAM_VENV)
	$(SAM_VENV)/bin/pip install -q aws-sam-cli
	touch $@

sam: $(SAM_VENV)/bin/sam

# The local stack is built from the SAM transform's output, and the transform runs in aws-sam-cli's environment.
demo: $(BIN)/backdrop $(SAM_VENV)/bin/sam
	$(BIN)/backdrop demo

# Lint first (seconds), then the suite: unit, emulator, integration (moto + emulator over HTTP), template
# (cfn-lint, sam validate, sam build), e2e chaos. Two workers: the machine has two cores.
test: $(BIN)/backdrop $(SAM_VENV)/bin/sam
	$(BIN)/ruff check .
	$(BIN)/mypy
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(BIN)/pytest -n 2 -p no:cacheprovider

lint: $(BIN)/backdrop
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml

bench: $(BIN)/backdrop $(SAM_VENV)/bin/sam
	$(BIN)/python -m bench

build: $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam build

deploy: build
	$(SAM_VENV)/bin/sam deploy --guided

clean:
	rm -rf $(VENV) $(SAM_VENV) .aws-sam out
