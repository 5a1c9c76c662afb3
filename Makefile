# Two commands on a bare machine with Python 3.11: `make run` (the CRM) and `make test` (the suite).
PYTHON ?= python3.11
VENV ?= .venv
BIN := $(VENV)/bin
PORT ?= 5000
DEMO_USERS ?= 200
export PORT

.PHONY: run test install lint format bench clean-db

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

# Re-install only when pyproject.toml changes.
$(VENV)/.installed: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@

install: $(VENV)/.installed

run: install
	$(BIN)/python manage.py migrate --no-input
	$(BIN)/python manage.py seed_demo --users $(DEMO_USERS)
	$(BIN)/python manage.py embed_activities
	$(BIN)/python manage.py ensure_admin
	@echo ""
	@echo "  YAHealthy CRM is starting:"
	@echo "    Admin     http://127.0.0.1:$(PORT)/admin/"
	@echo "    API docs  http://127.0.0.1:$(PORT)/api/docs"
	@echo "    Health    http://127.0.0.1:$(PORT)/healthz"
	@echo "    Coach     $(BIN)/python manage.py coach_link demo_000003   (prints a link to /coach/)"
	@echo ""
	PATH="$(CURDIR)/$(BIN):$$PATH" $(BIN)/honcho start -f Procfile

test: install
	CI=$${CI:-} $(BIN)/python -m pytest

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/lint-imports

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python bench/seed_demo.py
