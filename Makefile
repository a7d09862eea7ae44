# creditledger: `make run` to try it, `make test` to check it.
SHELL := /bin/bash
VENV := .venv
BIN := $(VENV)/bin
# Django 6.1 needs Python >= 3.12: take the first one found (PATH, then pyenv).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.14 python3 $$HOME/.pyenv/versions/3.13*/bin/python3 $$HOME/.pyenv/versions/3.12*/bin/python3 /usr/local/bin/python3.1[2-9]; do \
	if command -v $$p >/dev/null 2>&1 && $$p -c 'import sys; sys.exit(0 if sys.version_info >= (3, 12) else 1)' >/dev/null 2>&1; then echo $$p; break; fi; done)
TEST_DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/creditledger
TEST_REDIS_URL ?= redis://127.0.0.1:6379/15
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install run serve test lint format bench soak migrations-check clean

$(BIN)/.installed: requirements.txt
	@if [ -z "$(PYTHON)" ]; then echo "Python >= 3.12 is required (Django 6.1). Install one or set PYTHON=/path/to/python3.12"; exit 1; fi
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.txt
	@touch $@

install: $(BIN)/.installed

# A random SECRET_KEY for development, kept in .env (git-ignored) across runs.
.env:
	@echo "SECRET_KEY=$$($(BIN)/python -c 'import secrets; print(secrets.token_urlsafe(50))')" > .env
	@echo "Wrote a random SECRET_KEY to .env"

run: install .env
	$(BIN)/python manage.py migrate --noinput
	$(BIN)/python manage.py load_demo
	$(BIN)/python manage.py runserver $(HOST):$(PORT)

test: install
	@# The browser test drives Debian's Chromium (tests/refunds/test_browser.py); it fails, never skips, without it.
	@test -x /usr/bin/chromium || (echo "Installing chromium for the browser test"; \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null) || \
		(echo "Could not install chromium: run 'apt-get update && apt-get install -y chromium' as root"; exit 1)
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -W ignore::RuntimeWarning manage.py makemigrations --check --dry-run --settings=config.settings_test >/dev/null || \
		(echo "Models changed without a migration: run manage.py makemigrations"; exit 1)
	DATABASE_URL=$(TEST_DATABASE_URL) REDIS_URL=$(TEST_REDIS_URL) $(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

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

clean:
	rm -rf $(VENV) db.sqlite3 .pytest_cache .ruff_cache
