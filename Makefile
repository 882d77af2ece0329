# Workflow Builder: `make run` starts everything, `make test` runs every test.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEVSTACK := $(BIN)/python deploy/local/devstack.py
PYTEST_ARGS ?=

.PHONY: install run up down check test test-fast fuzz-api migrate seed stop-servers clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,local]'
	@touch $(STAMP)

install: $(STAMP)

run: install          ## everything in the foreground; Ctrl-C stops it all
	$(BIN)/python deploy/local/run.py

up: install           ## the same in the background; returns when the site answers
	$(BIN)/python deploy/local/run.py --background

down:                 ## stop what `make up` started, and the embedded servers
	@test -x $(BIN)/python && $(BIN)/python deploy/local/run.py --stop || true

check: install        ## ruff and mypy on apps/ and workflowsite/ (deploy/local/checks.py)
	$(BIN)/python deploy/local/checks.py

test: install         ## the checks, then the whole suite on the embedded Postgres and Redis, with a real worker
	$(BIN)/python deploy/local/testrun.py $(PYTEST_ARGS)

fuzz-api: install      ## schemathesis over the whole API, 100 examples per operation (docs/security.md, Proof)
	WB_SCHEMATHESIS_EXAMPLES=$${WB_SCHEMATHESIS_EXAMPLES:-100} WB_SCHEMATHESIS_REPORT=$${WB_SCHEMATHESIS_REPORT:-.data/schemathesis.json} \
	WB_TEST_WORKERS=0 $(BIN)/python deploy/local/testrun.py tests/security/test_schemathesis.py -q

migrate: install
	$(DEVSTACK) exec -- $(BIN)/python manage.py migrate

clean: down
	rm -rf .data $(VENV)
