# The two commands: `make up` runs the service locally, `make test` tests it. Both set up everything first.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-$(shell cksum pyproject.toml | cut -d' ' -f1)

.PHONY: up down reload logs test test-reliability test-cluster lint typecheck fmt install services tools bench status clean

# The local stack is a local run; ENVIRONMENT unset means production (fail-closed defaults).
export ENVIRONMENT ?= local

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check --upgrade pip
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]' -e ./clients/python
	@rm -f $(VENV)/.installed-*
	@touch $@

install: $(STAMP)

services: install
	$(PYTHON) infra/local/stack.py up

tools:
	$(PYTHON) infra/local/stack.py tools

up: services
	@mkdir -p "$${GOVERNANCE_STATE_DIR:-.state}" && echo "ENVIRONMENT=local" > "$${GOVERNANCE_STATE_DIR:-.state}/local.env"
	$(BIN)/python -m infra.migrate
	$(BIN)/govern admin bootstrap --file .state/admin-key
	$(BIN)/python infra/local/apps.py up

down:
	-@test -x $(BIN)/python && $(BIN)/python infra/local/apps.py down
	$(PYTHON) infra/local/stack.py down

# A rolling restart of the check path: each worker replaced once its replacement serves, no check refused.
reload:
	$(BIN)/python infra/local/apps.py reload ingress

status:
	-@test -x $(BIN)/python && $(BIN)/python infra/local/apps.py status
	$(PYTHON) infra/local/stack.py status

logs:
	tail -n 50 -F .state/logs/*.log

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check ingress consumers workers schemas infra bench tests clients

typecheck: install
	$(BIN)/mypy

fmt: install
	$(BIN)/ruff format ingress consumers workers schemas infra bench tests clients
	$(BIN)/ruff check --fix .

# The load-and-fault scenarios (docs/reliability.md: audit, degraded, delivery, noisy neighbour, scale-out) run in
# `make test-reliability` (about 6 minutes more); `test` runs the security and schema-fuzzing scenarios and the
# three-broker failover (80 s) of tests/reliability/, and keeps the suite near 20 minutes.
RELIABILITY_ONLY := $(addprefix tests/reliability/test_,audit.py degraded.py delivery.py noisy_neighbour.py scale_out.py)

test: services tools lint typecheck
	GOVERNANCE_CLUSTER_TESTS=1 $(BIN)/python -m pytest $(addprefix --ignore=,$(RELIABILITY_ONLY)) $(PYTEST_ARGS)

# Every fault scenario (docs/reliability.md), the three-broker one included.
test-reliability: services tools
	GOVERNANCE_CLUSTER_TESTS=1 $(BIN)/python -m pytest tests/reliability -s $(PYTEST_ARGS)

# The three-broker Kafka failover scenario alone (docs/reliability.md, 19; `test` runs it too).
test-cluster: services tools
	$(BIN)/python -m pytest -m cluster tests/reliability/test_broker_failover.py -s $(PYTEST_ARGS)

bench: services tools
	$(BIN)/python -m bench $(BENCH_ARGS)

clean: down
	rm -rf .state
