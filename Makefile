# The few commands people type. Each sets up what it needs on a fresh machine.
PYTHON ?= python3
VENV := .venv
SAM_VENV := .venv-sam
CHECKOV_VENV := .venv-checkov
CHECKOV_VERSION := 3.3.30
# A stamp per version: changing CHECKOV_VERSION installs that version.
CHECKOV := $(CHECKOV_VENV)/.installed-$(CHECKOV_VERSION)
BIN := $(VENV)/bin
export PIP_DISABLE_PIP_VERSION_CHECK := 1

.PHONY: demo test lint bench build deploy sam checkov clean

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

# checkov too: it pins boto3 1.35, networkx < 2.7 and packaging < 24, which the app and cfn-lint must not inherit.
# Its version is pinned so that a release's new checks arrive by a commit here, not as a red CI run.
$(CHECKOV):
	test -x $(CHECKOV_VENV)/bin/python || $(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install -q checkov==$(CHECKOV_VERSION)
	touch $@

checkov: $(CHECKOV)

# The local stack is built from the SAM transform's output, and the transform runs in aws-sam-cli's environment.
demo: $(BIN)/backdrop $(SAM_VENV)/bin/sam
	$(BIN)/backdrop demo

# Lint first (seconds), then the suite: unit, emulator, integration (moto + emulator over HTTP), template
# (cfn-lint, sam validate, sam build, checkov on the transformed template), e2e chaos. Three workers on two
# cores: most of a local-stack test is waiting on queues and Claid's modelled latency, and the chaos test alone
# holds one worker for about four minutes (measured: 10:34 with two workers, 9:25 with three, on a loaded machine).
test: $(BIN)/backdrop $(SAM_VENV)/bin/sam $(CHECKOV)
	$(BIN)/ruff check .
	$(BIN)/mypy
	PATH="$(CURDIR)/$(SAM_VENV)/bin:$$PATH" $(BIN)/pytest -n 3 -p no:cacheprovider

# cfn-lint reads template.yaml; checkov reads what the SAM transform makes of it (run in .venv-sam), every
# finding fixed or skipped in template.yaml next to its resource with the reason (docs/operations.md "Scanners").
lint: $(BIN)/backdrop $(SAM_VENV)/bin/sam $(CHECKOV)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/cfn-lint template.yaml
	$(BIN)/python -m backdrop_kit.checks

# make bench: the full run (about 10 minutes); make bench QUICK=1: a smaller one for checking a change (about 3)
bench: $(BIN)/backdrop $(SAM_VENV)/bin/sam
	$(BIN)/python -m bench $(if $(QUICK),--quick)

# sam build ships source only; the kit then compiles it with the runtime's Python, so cold starts load bytecode.
build: $(BIN)/backdrop $(SAM_VENV)/bin/sam
	$(SAM_VENV)/bin/sam build
	$(BIN)/python -m backdrop_kit.bytecode .aws-sam/build

deploy: build
	$(SAM_VENV)/bin/sam deploy --guided

clean:
	rm -rf $(VENV) $(SAM_VENV) $(CHECKOV_VENV) .aws-sam out
