# Candidate CRM: `make run` serves the app with demo data; `make test` runs every check.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
PORT ?= 8501
POSTGRES_URL ?= $(or $(CRM_TEST_POSTGRES_URL),postgresql+psycopg://postgres@127.0.0.1:5432/test)
CHROMIUM := /usr/bin/chromium
DOVECOT := /usr/sbin/dovecot
# `make test` runs the non-browser tests again with the clock moved to each of these
# moments (tests/conftest.py HARD_MOMENTS), on SQLite, two at a time (tests/moved_passes.sh):
# the suite must hold on any day.
HARD_MOMENTS := new-years-eve leap-day eu-dst us-dst

.PHONY: run test lint bench chromium dovecot clean

$(BIN)/python:
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Candidate CRM needs Python 3.11 or newer; set PYTHON=python3.12 (or similar).")'
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e .
	@touch $@

$(VENV)/.installed-test: pyproject.toml | $(BIN)/python
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[test]'
	@touch $@ $(VENV)/.installed

run: $(VENV)/.installed
	@$(BIN)/crm init
	@$(BIN)/crm demo --if-empty
	@$(BIN)/crm serve --port $(PORT)

chromium:
	@if [ ! -x $(CHROMIUM) ]; then \
		echo "Installing Debian's chromium for the browser tests..."; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq chromium >/dev/null \
		|| { echo "Could not install chromium; install it with: apt-get install chromium"; exit 1; }; \
	fi

# The mailbox tests start their own dovecot (Debian's) on a free loopback port.
dovecot:
	@if [ ! -x $(DOVECOT) ]; then \
		echo "Installing Debian's dovecot for the mailbox tests..."; \
		if [ "$$(id -u)" = 0 ]; then SUDO=; else SUDO=sudo; fi; \
		$$SUDO apt-get update -qq && DEBIAN_FRONTEND=noninteractive $$SUDO apt-get install -y -qq dovecot-imapd >/dev/null \
		|| { echo "Could not install dovecot; install it with: apt-get install dovecot-imapd"; exit 1; }; \
	fi

lint: $(VENV)/.installed-test
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

test: $(VENV)/.installed-test chromium dovecot lint
	@echo "== tests on SQLite"
	$(BIN)/python -m pytest
	@if $(BIN)/python -c "import psycopg, sys; psycopg.connect(sys.argv[1].replace('+psycopg', ''), connect_timeout=3).close()" "$(POSTGRES_URL)" 2>/dev/null; then \
		echo "== tests on PostgreSQL ($(POSTGRES_URL))"; \
		CRM_TEST_BACKEND=postgres CRM_TEST_POSTGRES_URL="$(POSTGRES_URL)" $(BIN)/python -m pytest; \
	elif [ -n "$$CRM_REQUIRE_POSTGRES" ]; then \
		echo "PostgreSQL does not answer at $(POSTGRES_URL), and CRM_REQUIRE_POSTGRES is set."; exit 1; \
	else \
		echo "== PostgreSQL does not answer at $(POSTGRES_URL): PostgreSQL run skipped"; \
	fi
	@bash tests/moved_passes.sh $(BIN)/python $(HARD_MOMENTS)

bench: $(VENV)/.installed-test chromium
	$(BIN)/python -m benchmarks
	$(BIN)/python -m benchmarks.import_speed
	$(BIN)/python -m benchmarks.pool_count
	$(BIN)/python -m benchmarks.campaign_speed
	$(BIN)/python -m benchmarks.tracking_speed
	$(BIN)/python -m benchmarks.report_page
	$(BIN)/python -m benchmarks.calendar_speed
	$(BIN)/python -m benchmarks.goals_page
	CRM_TEST_POSTGRES_URL="$(POSTGRES_URL)" $(BIN)/python -m benchmarks.team_load

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .hypothesis
