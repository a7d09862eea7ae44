# creditledger: `make run` to try it, `make test` to check it.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Django 6.1 needs Python >= 3.12: take the first one found (PATH, then pyenv).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.14 python3 $$HOME/.pyenv/versions/3.13*/bin/python3 $$HOME/.pyenv/versions/3.12*/bin/python3 /usr/local/bin/python3.1[2-9]; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then echo $$p; break; fi; done)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve test lint format bench soak screenshots migrations-check clean

$(BIN)/.installed: requirements.txt sdk/python/pyproject.toml
	@if [ -z "$(PYTHON)" ]; then echo "Python >= 3.12 is required (Django 6.1). Install one or set PYTHON=/path/to/python3.12"; exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@# The Python client (sdk/python, its one dependency httpx), editable: tests/sdk drive it against gunicorn.
	$(BIN)/python -m pip install --quiet -e ./sdk/python
	@touch $@

install: $(BIN)/.installed

# A random SECRET_KEY for development, kept in .env (git-ignored) across runs.
.env:
	@echo "SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env
	@echo "Wrote a random SECRET_KEY to .env"

# PostgreSQL at DATABASE_URL, else the embedded server on .pgdata/ (config/embedded_postgres.py).
# Webhooks may reach local receivers (http, 127.0.0.1) in development: docs/operations.md, "Events and webhooks".
run: export CREDITLEDGER_WEBHOOK_ALLOW_PRIVATE ?= true
run: install .env
	@# The ledger's HMAC key (docs/operations.md, "Ledger keys"), added to an older .env too.
	@grep -q '^CREDITLEDGER_LEDGER_KEY=' .env || { \
		echo "CREDITLEDGER_LEDGER_KEY=k1:$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(32))')" >> .env; \
		echo "Wrote a random CREDITLEDGER_LEDGER_KEY to .env"; }
	$(BIN)/python manage.py migrate --noinput
	@# WhiteNoise serves the admin's and the API docs' files from staticfiles/, DEBUG or not.
	$(BIN)/python manage.py collectstatic --noinput -v 0
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

# PostgreSQL at TEST_DATABASE_URL, else the embedded server on .pgdata-test/; Redis at
# TEST_REDIS_URL if it answers, else a private redis-server (config/settings_test.py).
test: install
	@# Debian's Chromium drives the browser test (tests/refunds/test_browser.py; it fails, never skips, without it);
	@# redis-server serves the tests that stop a Redis of their own, and the run when TEST_REDIS_URL does not answer.
	@missing=""; test -x /usr/bin/chromium || missing="chromium"; command -v redis-server >/dev/null || missing="$$missing redis-server"; \
	if [ -n "$$missing" ]; then echo "Installing $$missing for the tests"; \
		(apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null) || \
		{ echo "Could not install $$missing: run 'apt-get update && apt-get install -y $$missing' as root"; exit 1; }; fi
	$(BIN)/python -W ignore::RuntimeWarning manage.py makemigrations --check --dry-run --settings=config.settings_test >/dev/null || \
		(echo "Models changed without a migration: run manage.py makemigrations"; exit 1)
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

lint: install
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: install
	$(BIN)/ruff format .
	$(BIN)/ruff check --fix .

bench: install
	$(BIN)/python -m bench $(BENCH_ARGS)

# 5 minutes, 32 clients mixing every money-moving call: zero deadlocks, zero lost requests.
soak: install
	$(BIN)/python -m bench --soak $(BENCH_ARGS)

# The console's key pages, as a new user sees them, into docs/screenshots/ (demo/screenshots.py).
screenshots: install
	$(BIN)/python -m demo.screenshots

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .pgdata-test
